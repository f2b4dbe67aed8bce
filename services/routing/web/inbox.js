// The two lists: 待办 (assigned to my org) and 督办 (what I supervise below me).

import { api } from "./session.js";
import { LEVEL, STATUS, colourOf, countdown, el, formatTime, syncClock } from "./ui.js";

const PAGE_SIZE = 30;

export class Inbox {
  constructor({ list, empty, more, filter, onOpen }) {
    this.list = list;
    this.empty = empty;
    this.more = more;
    this.filter = filter;
    this.onOpen = onOpen;
    this.view = "assigned";
    this.items = [];
    this.total = 0;
    this.selected = null;
    this.more.addEventListener("click", () => this.load({ append: true }));
  }

  query(offset) {
    const params = new URLSearchParams({ view: this.view, limit: PAGE_SIZE, offset });
    if (this.filter.value) params.append("status", this.filter.value);
    return `/api/v1/cases?${params}`;
  }

  async load({ append = false } = {}) {
    const offset = append ? this.items.length : 0;
    const page = await api("GET", this.query(offset));
    syncClock(page.now);
    this.items = append ? this.items.concat(page.items) : page.items;
    this.total = page.total;
    this.render();
    return page;
  }

  // How many cases each list holds (for the tab badges), without the status filter.
  async count(view) {
    const page = await api("GET", `/api/v1/cases?view=${view}&limit=1`);
    return page.total;
  }

  select(complaintId) {
    this.selected = complaintId;
    for (const item of this.list.children) {
      item.classList.toggle("selected", item.dataset.id === complaintId);
    }
  }

  render() {
    this.list.replaceChildren(...this.items.map((item) => this.row(item)));
    this.empty.hidden = this.items.length > 0;
    this.empty.textContent = this.view === "supervised" ? "没有需要督办的诉求" : "暂无待办诉求";
    this.more.hidden = this.items.length >= this.total;
  }

  row(item) {
    // In 督办 the question is who let it lapse; in 待办, who is watching us.
    let where = "";
    if (this.view === "supervised") where = `${item.assignee.name} · ${LEVEL[item.assignee.level] || ""}`;
    else if (item.supervisor) where = `${item.supervisor.name}督办`;
    const deadline = item.deadline ? countdown(item.deadline) : noDeadline(item);
    const button = el(
      "button",
      {
        type: "button",
        class: "case-row",
        onclick: () => this.onOpen(item.complaint_id),
      },
      el(
        "span",
        { class: "row-top" },
        el("span", { class: "tracking", text: item.tracking_no }),
        el("span", { class: `status status-${item.status}`, text: STATUS[item.status] || item.status }),
      ),
      el(
        "span",
        { class: "row-middle" },
        el("span", { class: "category", text: item.category || "未分类" }),
        item.urgency === "urgent" ? el("span", { class: "tag urgent", text: "紧急" }) : null,
        item.overdue ? el("span", { class: "tag late", text: "已超期" }) : null,
        item.returns > 0 ? el("span", { class: "tag", text: `退回${item.returns}次` }) : null,
        item.reopens > 0 ? el("span", { class: "tag", text: `重办${item.reopens}次` }) : null,
      ),
      el(
        "span",
        { class: "row-bottom" },
        deadline,
        el("span", { class: "where", text: where }),
      ),
      el("span", { class: "submitted", text: `提交于 ${formatTime(item.submitted_at)}` }),
    );
    const urgency = item.deadline ? colourOf(item.deadline) : "none";
    return el(
      "li",
      {
        class: item.complaint_id === this.selected ? "case selected" : "case",
        dataset: { id: item.complaint_id, urgency },
      },
      button,
    );
  }
}

function noDeadline(item) {
  let text = "时限待定";
  if (item.status === "resolved") text = item.visited ? "待归档" : "待回访";
  return el("span", { class: "countdown none", text });
}
