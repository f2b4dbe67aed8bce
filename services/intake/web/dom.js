// Small DOM helpers. Text goes in through textContent only: nothing a citizen, a member of
// staff or the server wrote is ever parsed as HTML.

export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

export function say(node, text) {
  node.textContent = text || "";
}

const BEIJING = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  month: "numeric",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

// "3月2日 11:00" in Beijing time, whatever the phone's own time zone.
export function beijing(iso) {
  if (!iso) return "";
  const parts = Object.fromEntries(
    BEIJING.formatToParts(new Date(iso)).map((part) => [part.type, part.value]),
  );
  return `${parts.month}月${parts.day}日 ${parts.hour}:${parts.minute}`;
}
