// The citizen page: one HTML file, three views chosen by the address's #fragment.
//   #/          the form            #/c/<id>   one complaint's progress
//   #/lookup    查询我的诉求
// The citizen token never goes into the address (it would end up in history and logs).

import { $, beijing, el } from "./dom.js";
import { setUpForm } from "./form.js";
import { kept, recall } from "./keep.js";
import { lookupNotice, setUpLookup } from "./lookup.js";
import { leaveProgress, setUpRating, showProgress } from "./progress.js";

const VIEWS = ["form-view", "result-view", "lookup-view"];
const pendingPhotos = new Map(); // complaint id → photos still to upload after submitting

let firstRoute = true;

function show(viewId, title) {
  for (const id of VIEWS) $(`#${id}`).hidden = id !== viewId;
  // After a change of view, move focus to its heading so a screen reader announces it.
  if (!firstRoute) $(`#${viewId} h1`).focus();
  firstRoute = false;
  $("#nav-new").toggleAttribute("aria-current", viewId === "form-view");
  $("#nav-lookup").toggleAttribute("aria-current", viewId === "lookup-view");
  document.title = `${title} · 瓜州县群众诉求`;
  window.scrollTo(0, 0);
}

function renderKept() {
  const entries = kept();
  $("#mine").hidden = entries.length === 0;
  $("#mine-list").replaceChildren(
    ...entries.map((entry) =>
      el("li", {}, [
        el("a", {
          text: entry.trackingNo,
          attrs: { href: `#/c/${encodeURIComponent(entry.id)}`, translate: "no" },
        }),
        el("span", { className: "muted small", text: ` ${beijing(entry.savedAt)}` }),
      ]),
    ),
  );
}

function route() {
  leaveProgress();
  const hash = window.location.hash || "#/";
  if (hash.startsWith("#/c/")) {
    const id = decodeURIComponent(hash.slice(4));
    const entry = recall(id);
    if (entry) {
      show("result-view", `受理编号 ${entry.trackingNo}`);
      const photos = pendingPhotos.get(id) || [];
      pendingPhotos.delete(id);
      showProgress({ ...entry, pendingPhotos: photos });
      return;
    }
    show("lookup-view", "查询我的诉求");
    lookupNotice("本机没有这条诉求的查询凭据，请输入受理编号和手机后四位。");
    return;
  }
  if (hash === "#/lookup") {
    show("lookup-view", "查询我的诉求");
    lookupNotice("");
    return;
  }
  show("form-view", "反映问题");
  renderKept();
}

function open(id) {
  window.location.hash = `#/c/${encodeURIComponent(id)}`;
}

setUpForm({
  onSubmitted: (receipt, photos) => {
    if (photos.length) pendingPhotos.set(receipt.id, photos);
    open(receipt.id);
  },
});
setUpLookup({ onFound: (found) => open(found.id) });
setUpRating();
window.addEventListener("hashchange", route);
route();
