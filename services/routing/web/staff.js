// The workbench page: sign-in, the inbox and the case panel.

import { CaseDetail } from "./detail.js";
import { Inbox } from "./inbox.js";
import {
  ApiError,
  changePassword,
  currentUser,
  explain,
  login,
  logout,
  safeNext,
} from "./session.js";
import { LEVEL, paintCountdown, showToast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 30_000;

const views = ["login-view", "password-view", "work-view"];
let inbox = null;
let detail = null;
let refreshTimer = null;

function show(view) {
  $("booting").hidden = true;
  for (const id of views) $(id).hidden = id !== view;
}

function showUser(user) {
  $("who").hidden = !user;
  document.body.classList.toggle("signed-in", Boolean(user));
  if (!user) return;
  $("who-name").textContent = user.display_name;
  $("who-org").textContent = `${user.org.name || user.org.code} · ${LEVEL[user.org.level] || ""}`;
  $("dashboard-link").hidden = user.org.level === "village";
}

function nextPage() {
  return safeNext(new URLSearchParams(window.location.search).get("next"));
}

async function enter(user) {
  showUser(user);
  if (user.must_change_password) {
    show("password-view");
    $("password-current").focus();
    return;
  }
  const next = nextPage();
  if (next && next !== "/staff") {
    window.location.assign(next);
    return;
  }
  show("work-view");
  startWork(user);
}

function startWork(user) {
  const supervises = user.org.level === "township" || user.org.level === "county";
  document.querySelector('.tab[data-view="supervised"]').hidden = !supervises;
  inbox = new Inbox({
    list: $("case-list"),
    empty: $("list-empty"),
    more: $("more"),
    filter: $("status-filter"),
    onOpen: (id) => openCase(id),
  });
  detail = new CaseDetail({
    root: $("detail"),
    onBack: () => closeCase(),
    onChanged: async (id) => {
      await Promise.all([refreshLists(), detail.open(id)]);
    },
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => switchView(tab.dataset.view));
  }
  detail.close();
  $("status-filter").addEventListener("change", () => refreshLists());
  $("refresh").addEventListener("click", () => refreshLists());
  refreshLists();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => refreshLists({ quiet: true }), REFRESH_MS);
}

async function refreshLists({ quiet = false } = {}) {
  const notice = $("list-notice");
  try {
    await inbox.load();
    notice.hidden = true;
    await updateCounts();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut();
    if (!quiet) {
      notice.textContent = explain(error);
      notice.hidden = false;
    }
  }
}

async function updateCounts() {
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.hidden) continue;
    const view = tab.dataset.view;
    const total = view === inbox.view && !$("status-filter").value ? inbox.total : await inbox.count(view);
    tab.querySelector(".count").textContent = total > 0 ? String(total) : "";
  }
}

function switchView(view) {
  inbox.view = view;
  for (const tab of document.querySelectorAll(".tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  }
  closeCase();
  refreshLists();
}

async function openCase(id) {
  inbox.select(id);
  document.body.classList.add("reading");
  try {
    await detail.open(id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signedOut();
  }
  if (window.matchMedia("(max-width: 899px)").matches) window.scrollTo(0, 0);
}

function closeCase() {
  document.body.classList.remove("reading");
  if (detail) detail.close();
  if (inbox) inbox.select(null);
}

function signedOut() {
  clearInterval(refreshTimer);
  showUser(null);
  show("login-view");
  $("login-username").focus();
}

function wireForms() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("login-error");
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    if (!username || !password) {
      error.textContent = "请输入用户名和密码";
      error.hidden = false;
      return;
    }
    const button = event.submitter || $("login-form").querySelector("button");
    button.disabled = true;
    try {
      const user = await login(username, password);
      error.hidden = true;
      $("login-password").value = "";
      await enter(user);
    } catch (failure) {
      error.textContent =
        failure instanceof ApiError && failure.status === 401 ? "用户名或密码错误" : explain(failure);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("password-error");
    const current = $("password-current").value;
    const fresh = $("password-new").value;
    if (fresh.length < 10) {
      error.textContent = "新密码至少 10 个字符";
    } else if (fresh !== $("password-again").value) {
      error.textContent = "两次输入的新密码不一致";
    } else {
      try {
        await changePassword(current, fresh);
        showToast("密码已修改");
        error.hidden = true;
        await enter(await currentUser());
        return;
      } catch (failure) {
        error.textContent = explain(failure);
      }
    }
    error.hidden = false;
  });

  $("logout").addEventListener("click", async () => {
    try {
      await logout();
    } finally {
      window.location.assign("/staff");
    }
  });
}

function tickCountdowns() {
  for (const node of document.querySelectorAll(".countdown[data-due]")) paintCountdown(node);
}

async function boot() {
  wireForms();
  setInterval(tickCountdowns, 1000);
  try {
    const user = await currentUser();
    if (user) await enter(user);
    else signedOut();
  } catch (error) {
    $("booting").textContent = explain(error);
  }
}

boot();
