// The result page: the tracking number, where the complaint is, a timeline that updates by
// itself, the photos, and the rating once it is resolved.

import { api, ApiError } from "./api.js";
import { $, beijing, el, say } from "./dom.js";

const EVERY_MS = 4000;
const STATUS_TONE = {
  submitted: "info",
  pending_dispatch: "info",
  assigned: "info",
  accepted: "work",
  replied: "work",
  escalated: "warn",
  reopened: "warn",
  resolved: "done",
  closed: "closed",
};

let current = null; // { id, token, timer, signature, photoUrls }

export function leaveProgress() {
  if (current && current.timer) clearTimeout(current.timer);
  if (current) current.photoUrls.forEach((url) => URL.revokeObjectURL(url));
  current = null;
}

export function showProgress({ id, token, trackingNo, pendingPhotos = [] }) {
  leaveProgress();
  current = { id, token, timer: null, signature: "", photoUrls: new Map(), stopped: false };
  say($("#tracking-no"), trackingNo || "");
  say($("#status"), "正在读取…");
  $("#status").className = "badge";
  $("#facts").replaceChildren();
  $("#timeline").replaceChildren();
  $("#rating").hidden = true;
  $("#rated").hidden = true;
  $("#result-photos-block").hidden = true;
  $("#result-photos").replaceChildren();
  say($("#rating-error"), "");
  say($("#upload-status"), "");
  $("#upload-retry").hidden = true;
  const mine = current;
  if (pendingPhotos.length) uploadPhotos(mine, pendingPhotos);
  refresh(mine);
}

async function refresh(session) {
  if (session !== current) return;
  try {
    const view = await api.view(session.id, session.token);
    if (session !== current) return;
    render(session, view);
    if (view.status === "closed") {
      say($("#refresh-note"), "已归档，进度不再变化 · 时间均为北京时间");
      return;
    }
    const now = beijing(new Date().toISOString());
    say($("#refresh-note"), `自动更新中 · ${now} 已更新 · 时间均为北京时间`);
  } catch (error) {
    if (session !== current) return;
    if (error instanceof ApiError && error.status === 404) {
      say($("#status"), "无法查看");
      say($("#refresh-note"), "本机保存的凭据已失效，请用受理编号和手机后四位重新查询。");
      return;
    }
    say($("#refresh-note"), "网络不稳定，稍后自动重试…");
  }
  schedule(session);
}

function schedule(session) {
  if (session !== current) return;
  clearTimeout(session.timer);
  // A hidden tab does not poll; it catches up as soon as it is looked at again.
  session.timer = document.hidden ? null : setTimeout(() => refresh(session), EVERY_MS);
}

document.addEventListener("visibilitychange", () => {
  if (current && !document.hidden && !current.timer) refresh(current);
});

function fact(term, value, extra) {
  const dd = el("dd", { text: value });
  if (extra) dd.append(el("span", { className: "fact-extra", text: extra }));
  return [el("dt", { text: term }), dd];
}

function render(session, view) {
  const signature = JSON.stringify(view);
  if (signature === session.signature) return; // nothing new: leave the screen (and readers) be
  session.signature = signature;
  if (view.tracking_no) say($("#tracking-no"), view.tracking_no);

  const badge = $("#status");
  badge.className = `badge tone-${STATUS_TONE[view.status] || "info"}`;
  say(badge, view.overdue ? `${view.status_label} · 已超时` : view.status_label);

  const facts = [];
  if (view.assignee) facts.push(...fact("承办单位", view.assignee.name));
  if (view.supervisor) facts.push(...fact("督办单位", view.supervisor.name, "（上级督办中）"));
  if (view.deadlines.accept_by) {
    facts.push(...fact("签收时限", beijing(view.deadlines.accept_by), " 前"));
  }
  if (view.deadlines.resolve_by) {
    facts.push(...fact("办结时限", beijing(view.deadlines.resolve_by), " 前"));
  }
  if (view.category) facts.push(...fact("问题类别", view.category));
  facts.push(...fact("提交时间", beijing(view.submitted_at)));
  $("#facts").replaceChildren(...facts);

  const entries = [...view.timeline].reverse(); // newest first: what changed is on top
  $("#timeline").replaceChildren(
    ...entries.map((entry, index) =>
      el("li", { className: `step kind-${entry.kind}${index === 0 ? " latest" : ""}` }, [
        el("time", { text: beijing(entry.at), attrs: { datetime: entry.at } }),
        el("p", { text: entry.text }),
      ]),
    ),
  );

  $("#rating").hidden = !view.can_rate;
  const rated = $("#rated");
  rated.hidden = view.can_rate || !view.rating_label;
  say(rated, view.rating_label ? `您的评价：${view.rating_label}` : "");

  showPhotos(session, view.photos || []);
}

async function showPhotos(session, photos) {
  $("#result-photos-block").hidden = photos.length === 0;
  const list = $("#result-photos");
  for (const [index, photo] of photos.entries()) {
    if (session.photoUrls.has(photo.id)) continue;
    session.photoUrls.set(photo.id, "");
    try {
      const blob = await api.photoBlob(photo.url, session.token);
      if (session !== current) return;
      const url = URL.createObjectURL(blob);
      session.photoUrls.set(photo.id, url);
      list.append(
        el("li", { className: "thumb" }, [
          el("img", { attrs: { src: url, alt: `照片 ${index + 1}` } }),
        ]),
      );
    } catch {
      session.photoUrls.delete(photo.id);
    }
  }
}

// One photo at a time, each retried on its own: a dropped connection costs one photo, never
// the complaint. Sending the same photo again is harmless (the server keeps it once).
async function uploadPhotos(session, photos) {
  const status = $("#upload-status");
  const retry = $("#upload-retry");
  retry.hidden = true;
  const failed = [];
  let lastReason = "";
  for (const [index, photo] of photos.entries()) {
    if (session !== current) return;
    say(status, `正在上传照片 ${index + 1} / ${photos.length}…`);
    try {
      await api.uploadPhoto(session.id, session.token, photo.blob, photo.name);
    } catch (error) {
      failed.push(photo);
      lastReason = error.message;
    }
  }
  if (session !== current) return;
  if (failed.length) {
    say(status, `有 ${failed.length} 张照片未上传（${lastReason}）。诉求已提交，不受影响。`);
    retry.hidden = false;
    retry.onclick = () => uploadPhotos(session, failed);
  } else {
    say(status, `${photos.length} 张照片已上传`);
    refresh(session);
  }
}

export function setUpRating() {
  for (const button of document.querySelectorAll("#rating [data-rating]")) {
    button.addEventListener("click", async () => {
      const session = current;
      if (!session) return;
      const buttons = document.querySelectorAll("#rating [data-rating]");
      buttons.forEach((b) => (b.disabled = true));
      say($("#rating-error"), "");
      try {
        await api.rate(session.id, session.token, button.dataset.rating);
        refresh(session);
      } catch (error) {
        say($("#rating-error"), `评价未成功：${error.message}`);
      } finally {
        buttons.forEach((b) => (b.disabled = false));
      }
    });
  }
}
