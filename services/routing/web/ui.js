// Small helpers for the workbench: building DOM safely, Chinese labels, time and countdowns.
//
// Everything shown comes through textContent: nothing a citizen or colleague typed is ever
// parsed as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const STATUS = {
  pending_dispatch: "待分派",
  assigned: "待签收",
  accepted: "已签收",
  replied: "已答复",
  escalated: "督办中",
  reopened: "重新办理",
  resolved: "已办结",
  closed: "已归档",
};

export const LEVEL = { village: "村(社区)", township: "乡镇", county: "县平台" };

export const ACTION = {
  accept: "签收",
  reply: "答复",
  resolve: "办结",
  return: "退回",
  dispatch: "分派",
  visit: "回访",
  close: "归档",
  reopen: "重新办理",
  escalate: "超时督办",
  mark_overdue: "超期",
};

export const CHANNEL = {
  web: "网页",
  wechat: "微信小程序",
  open311: "Open311",
  grid_worker: "网格员",
  phone: "电话",
};

export const STAGE = { accept: "签收时限", resolve: "办结时限" };

// The server's clock minus ours, so countdowns follow the server even if the phone is off.
let skewMs = 0;

export function syncClock(serverNowIso) {
  const server = Date.parse(serverNowIso);
  if (!Number.isNaN(server)) skewMs = server - Date.now();
}

export function now() {
  return Date.now() + skewMs;
}

const dateTime = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});

export function formatTime(iso) {
  if (!iso) return "—";
  const parsed = Date.parse(iso);
  return Number.isNaN(parsed) ? "—" : dateTime.format(new Date(parsed));
}

export function formatSpan(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days > 0) return `${days}天${hours}小时`;
  if (hours > 0) return `${hours}小时${rest}分`;
  if (minutes > 0) return `${rest}分钟`;
  return `${Math.max(0, Math.floor(ms / 1000))}秒`;
}

// The same rule as the server: red once passed, green while more than half is left.
export function colourOf(deadline, at = now()) {
  const due = Date.parse(deadline.due_at);
  const left = due - at;
  if (left <= 0) return "red";
  const started = deadline.started_at ? Date.parse(deadline.started_at) : NaN;
  if (Number.isNaN(started) || due <= started) return "amber";
  return left > (due - started) / 2 ? "green" : "amber";
}

export function countdownText(deadline, at = now()) {
  const left = Date.parse(deadline.due_at) - at;
  const stage = STAGE[deadline.stage] || "时限";
  return left > 0 ? `${stage} 剩余${formatSpan(left)}` : `${stage} 已超时${formatSpan(-left)}`;
}

// Paint one countdown element from its data attributes; called every second for all.
export function paintCountdown(node) {
  const deadline = {
    due_at: node.dataset.due,
    started_at: node.dataset.started || null,
    stage: node.dataset.stage,
  };
  const colour = colourOf(deadline);
  node.textContent = countdownText(deadline);
  node.classList.remove("green", "amber", "red");
  node.classList.add(colour);
  const card = node.closest("[data-urgency]");
  if (card) card.dataset.urgency = colour;
}

export function countdown(deadline) {
  const node = el("span", {
    class: "countdown",
    dataset: {
      due: deadline.due_at,
      started: deadline.started_at || "",
      stage: deadline.stage,
    },
  });
  paintCountdown(node);
  return node;
}

export function showToast(message, kind = "ok") {
  const toast = document.getElementById("toast");
  toast.textContent = message;
  toast.dataset.kind = kind;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => {
    toast.hidden = true;
  }, 3500);
}
