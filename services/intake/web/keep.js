// What this phone remembers: the token of each complaint filed or found here, so the citizen
// can come back to it. Nothing else is kept; private browsing simply remembers nothing.

const KEY = "yijian.citizen.v1";
const MAX_KEPT = 20;

function readAll() {
  try {
    const parsed = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

function writeAll(entries) {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries.slice(0, MAX_KEPT)));
  } catch {
    // Storage full or forbidden: the page still works for this visit.
  }
}

export function remember({ id, token, trackingNo }) {
  const others = readAll().filter((entry) => entry.id !== id);
  writeAll([{ id, token, trackingNo, savedAt: new Date().toISOString() }, ...others]);
}

export function recall(id) {
  return readAll().find((entry) => entry.id === id) || null;
}

export function kept() {
  return readAll();
}
