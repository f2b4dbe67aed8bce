// One case: what the citizen sent, its deadline, what staff may do next, and its history.

import { ApiError, api, explain } from "./session.js";
import {
  ACTION,
  CHANNEL,
  LEVEL,
  STATUS,
  colourOf,
  countdown,
  el,
  formatTime,
  showToast,
  syncClock,
} from "./ui.js";

const SATISFACTION = { true: "满意", false: "不满意", null: "未表态" };
const RATING = { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" };

// Actions that need words (or a choice) before they are sent.
const FORMS = {
  reply: { field: "message", label: "答复内容（群众可见进展）", submit: "提交答复", min: 1 },
  resolve: { field: "message", label: "办结情况说明", submit: "确认办结", min: 1 },
  return: { field: "reason", label: "退回原因（至少 2 个字）", submit: "确认退回", min: 2 },
  dispatch: { field: "note", label: "分派说明（可选）", submit: "确认分派", min: 0 },
  visit: { field: "note", label: "回访情况", submit: "保存回访", min: 1 },
};

export class CaseDetail {
  constructor({ root, onBack, onChanged }) {
    this.root = root;
    this.onBack = onBack;
    this.onChanged = onChanged;
    this.complaintId = null;
    this.busy = false;
  }

  async open(complaintId) {
    this.complaintId = complaintId;
    this.root.hidden = false;
    this.root.classList.remove("idle");
    this.root.replaceChildren(el("p", { class: "loading", text: "正在加载…" }));
    try {
      const detail = await api("GET", `/api/v1/cases/${encodeURIComponent(complaintId)}`);
      if (this.complaintId !== complaintId) return; // another case was opened meanwhile
      syncClock(detail.now);
      this.render(detail);
    } catch (error) {
      this.root.replaceChildren(this.backButton(), el("p", { class: "form-error", text: explain(error) }));
      throw error;
    }
  }

  // Nothing open: on a desktop the panel says how to open one; on a phone it hides.
  close() {
    this.complaintId = null;
    this.root.hidden = false;
    this.root.classList.add("idle");
    this.root.replaceChildren(el("p", { class: "placeholder", text: "在左侧列表中选择一条诉求，查看详情并办理。" }));
  }

  backButton() {
    return el("button", { type: "button", class: "back", onclick: () => this.onBack(), text: "‹ 返回列表" });
  }

  render(detail) {
    const c = detail.case;
    this.root.replaceChildren(
      el(
        "header",
        { class: "detail-head" },
        this.backButton(),
        el(
          "div",
          { class: "detail-title" },
          el("h2", { text: c.tracking_no }),
          el("span", { class: `status status-${c.status}`, text: STATUS[c.status] || c.status }),
        ),
      ),
      this.deadlineBanner(c),
      this.actions(detail),
      this.submission(detail),
      this.caseFacts(detail),
      this.history(detail.actions),
    );
  }

  deadlineBanner(c) {
    if (!c.deadline) {
      let text = "当前无办理时限";
      if (c.status === "resolved") text = c.visited ? "已回访，可以归档" : "已办结，请回访群众后归档";
      return el("div", { class: "banner", dataset: { urgency: "none" }, text });
    }
    return el(
      "div",
      { class: "banner", dataset: { urgency: colourOf(c.deadline) } },
      countdown(c.deadline),
      el("span", { class: "due", text: `截止 ${formatTime(c.deadline.due_at)}` }),
    );
  }

  actions(detail) {
    const offered = detail.available_actions;
    const area = el("div", { class: "action-form" });
    const block = el("section", { class: "block actions", "aria-label": "办理操作" });
    if (offered.length === 0) {
      block.append(el("p", { class: "muted", text: "当前没有您可以进行的操作。" }));
      return block;
    }
    const buttons = el(
      "div",
      { class: "action-buttons" },
      offered.map((action) =>
        el("button", {
          type: "button",
          class: action === offered[0] ? "primary" : "secondary",
          dataset: { action },
          text: ACTION[action] || action,
          onclick: () => (FORMS[action] ? this.showForm(area, action, detail) : this.send(action, undefined)),
        }),
      ),
    );
    block.append(buttons, area);
    return block;
  }

  showForm(area, action, detail) {
    const spec = FORMS[action];
    const text = el("textarea", {
      name: spec.field,
      rows: 3,
      maxlength: action === "return" ? 500 : 2000,
      "aria-label": spec.label,
    });
    const extra = [];
    let target = null;
    let satisfied = null;
    if (action === "dispatch") {
      target = el(
        "select",
        { name: "org_code", "aria-label": "分派给" },
        el("option", { value: "", text: "选择乡镇或村(社区)…" }),
        detail.dispatch_targets.map((org) =>
          el("option", { value: org.code, text: `${org.name} · ${LEVEL[org.level] || org.level}` }),
        ),
      );
      extra.push(el("label", { text: "分派给" }), target);
    }
    if (action === "visit") {
      satisfied = el(
        "div",
        { class: "choices", role: "radiogroup", "aria-label": "群众是否满意" },
        ["true", "false", "null"].map((value) =>
          el(
            "label",
            { class: "choice" },
            el("input", { type: "radio", name: "satisfied", value, checked: value === "null" }),
            SATISFACTION[value],
          ),
        ),
      );
      extra.push(el("span", { class: "label", text: "群众是否满意" }), satisfied);
    }
    const error = el("p", { class: "form-error", role: "alert", hidden: true });
    const form = el(
      "form",
      {
        class: "inline-form",
        novalidate: true,
        onsubmit: (event) => {
          event.preventDefault();
          const words = text.value.trim();
          if (words.length < spec.min) {
            error.textContent = `请填写${spec.label.replace(/（.*）/, "")}`;
            error.hidden = false;
            return;
          }
          const body = {};
          if (words) body[spec.field] = words;
          if (target) {
            if (!target.value) {
              error.textContent = "请选择分派对象";
              error.hidden = false;
              return;
            }
            body.org_code = target.value;
          }
          if (satisfied) {
            const picked = satisfied.querySelector("input:checked");
            body.satisfied = picked ? JSON.parse(picked.value) : null;
          }
          this.send(action, body, error);
        },
      },
      el("h3", { text: ACTION[action] }),
      extra,
      el("label", { text: spec.label }),
      text,
      error,
      el(
        "div",
        { class: "form-buttons" },
        el("button", { type: "submit", class: "primary", text: spec.submit }),
        el("button", { type: "button", class: "ghost", text: "取消", onclick: () => area.replaceChildren() }),
      ),
    );
    area.replaceChildren(form);
    text.focus();
  }

  async send(action, body, errorNode) {
    if (this.busy) return;
    this.busy = true;
    const id = this.complaintId;
    try {
      await api("POST", `/api/v1/complaints/${encodeURIComponent(id)}/${action}`, body);
      showToast(`已${ACTION[action]}`);
      await this.onChanged(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        window.location.assign("/staff"); // the session ended: sign in again
        return;
      }
      if (errorNode) {
        errorNode.textContent = explain(error);
        errorNode.hidden = false;
      } else {
        showToast(explain(error), "error");
      }
    } finally {
      this.busy = false;
    }
  }

  submission(detail) {
    const block = el("section", { class: "block" }, el("h3", { text: "群众诉求" }));
    if (detail.submission_notice) {
      block.append(el("p", { class: "notice", text: detail.submission_notice }));
    }
    const s = detail.submission;
    if (!s) return block;
    // The citizen's choice comes first, so nobody passes the contact on by mistake.
    if (detail.privacy_notice) {
      block.append(el("p", { class: "notice privacy-notice", text: detail.privacy_notice }));
    }
    block.append(el("p", { class: "description", text: s.description }));
    const place = placeText(detail.place, s.location, s.address_hidden);
    block.append(
      facts([
        ["类别", s.category || "未分类"],
        ["紧急程度", s.urgency === "urgent" ? "紧急" : "一般"],
        ["来源", CHANNEL[s.channel] || s.channel || "—"],
        ["提交时间", formatTime(s.submitted_at)],
        ["位置", place],
        ["群众评价", s.rating ? RATING[s.rating] || s.rating : "尚未评价"],
      ]),
    );
    if (s.photos.length > 0) {
      block.append(
        el(
          "div",
          { class: "photos" },
          s.photos.map((photo, index) =>
            el(
              "a",
              { href: photo.url, target: "_blank", rel: "noopener" },
              el("img", { src: photo.url, alt: `现场照片 ${index + 1}`, loading: "lazy" }),
            ),
          ),
        ),
      );
    }
    block.append(this.contact(detail));
    return block;
  }

  contact(detail) {
    const contact = detail.submission.contact;
    const shown = el("div", { class: "contact" });
    if (detail.submission.contact_withheld) {
      shown.append(
        el("h4", { text: "联系方式" }),
        el("p", { class: "muted small", text: "群众要求不向所在村(社区)透露其身份，联系方式和详细地址不在此显示。" }),
      );
      return shown;
    }
    const rows = [
      ["联系人", contact && contact.name ? contact.name : "未留"],
      ["电话", contact && contact.phone ? contact.phone : "未留"],
    ];
    shown.append(el("h4", { text: "联系方式" }), facts(rows));
    if (detail.can_reveal_contact) {
      const button = el("button", {
        type: "button",
        class: "secondary small",
        text: "查看完整联系方式",
        onclick: async () => {
          try {
            const full = await api("POST", `/api/v1/cases/${encodeURIComponent(this.complaintId)}/contact`);
            const place = full.address || (full.lat !== null ? `${full.lat}, ${full.lon}` : "未留");
            shown.replaceChildren(
              el("h4", { text: "联系方式（完整）" }),
              facts([
                ["联系人", full.name || "未留"],
                ["电话", full.phone || "未留"],
                ["详细地址", place],
              ]),
              el("p", { class: "muted small", text: "本次查看已记入审计日志。" }),
            );
          } catch (error) {
            showToast(explain(error), "error");
          }
        },
      });
      shown.append(button);
    } else if (contact) {
      shown.append(el("p", { class: "muted small", text: "联系方式已脱敏；主管或管理员可查看完整信息。" }));
    }
    return shown;
  }

  caseFacts(detail) {
    const c = detail.case;
    const rows = [
      ["责任单位", `${c.assignee.name} · ${LEVEL[c.assignee.level] || ""}`],
      ["督办单位", c.supervisor ? `${c.supervisor.name} · ${LEVEL[c.supervisor.level] || ""}` : "无"],
      ["签收时限", formatTime(c.accept_due_at)],
      ["办结时限", formatTime(c.resolve_due_at)],
    ];
    if (c.returns) rows.push(["退回次数", String(c.returns)]);
    if (c.reopens) rows.push(["重办次数", String(c.reopens)]);
    if (detail.visit) {
      rows.push(["回访", `${formatTime(detail.visit.at)} · ${SATISFACTION[String(detail.visit.satisfied)]}`]);
    }
    return el("section", { class: "block" }, el("h3", { text: "办理信息" }), facts(rows));
  }

  history(actions) {
    const block = el("section", { class: "block" }, el("h3", { text: "办理记录" }));
    if (actions.length === 0) {
      block.append(el("p", { class: "muted", text: "尚无办理记录。" }));
      return block;
    }
    block.append(
      el(
        "ol",
        { class: "history" },
        actions.map((entry) =>
          el(
            "li",
            {},
            el(
              "div",
              { class: "history-head" },
              el("strong", { text: ACTION[entry.action] || entry.action }),
              el("span", { class: "muted", text: formatTime(entry.at) }),
            ),
            el("div", {
              class: "muted small",
              text: [entry.actor_org_name || (entry.actor_org ? entry.actor_org : "系统"), entry.actor_user]
                .filter(Boolean)
                .join(" · "),
            }),
            entry.note ? el("p", { class: "note", text: entry.note }) : null,
          ),
        ),
      ),
    );
    return block;
  }
}

function facts(rows) {
  return el(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]),
  );
}

function placeText(place, location, addressHidden) {
  const parts = [];
  const named = [place.township, place.village, place.grid].filter(Boolean).join(" ");
  if (named) parts.push(named);
  if (location.lat !== null && location.lat !== undefined) parts.push(`坐标约 ${location.lat}, ${location.lon}`);
  if (addressHidden) parts.push("详细地址已隐藏");
  return parts.join("；") || "未提供";
}
