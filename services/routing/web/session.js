// The staff session in the browser, shared by every staff page (workbench, dashboard).
//
// The token itself lives in an HttpOnly cookie this script cannot read. Requests that
// change something carry the CSRF token the server gave at sign-in (or from /me) in the
// X-CSRF-Token header; the server refuses cookie-authenticated changes without it.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "网络连接失败，请检查网络后重试");
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.detail !== undefined ? payload.detail : null;
    throw new ApiError(response.status, detail);
  }
  return payload;
}

// The signed-in user, or null when nobody is (a 401).
export async function currentUser() {
  try {
    const me = await api("GET", "/api/v1/staff/me");
    csrfToken = me.csrf_token;
    return me;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export async function login(username, password) {
  const result = await api("POST", "/api/v1/staff/login", { username, password });
  csrfToken = result.csrf_token;
  return result.user;
}

export async function logout() {
  try {
    await api("POST", "/api/v1/staff/logout");
  } finally {
    csrfToken = null;
  }
}

export async function changePassword(currentPassword, newPassword) {
  await api("POST", "/api/v1/staff/password", {
    current_password: currentPassword,
    new_password: newPassword,
  });
}

// Where a staff page sends someone who is not signed in; they come back after sign-in.
export function loginPage(next) {
  return `/staff?next=${encodeURIComponent(next)}`;
}

// A same-site staff path to return to after sign-in, or null; never another origin.
export function safeNext(value) {
  return typeof value === "string" && /^\/staff(\/[a-z0-9-]+)*$/.test(value) ? value : null;
}

// A readable message for a failed request, in Chinese, with the server's reason.
export function explain(error) {
  if (!(error instanceof ApiError)) return "出现意外错误，请刷新页面重试";
  const reason = typeof error.detail === "string" ? `（${error.detail}）` : "";
  switch (error.status) {
    case 0:
      return error.message;
    case 401:
      return "登录已过期，请重新登录";
    case 403:
      return `无权进行此操作${reason}`;
    case 404:
      return "找不到这条诉求，或不在您的管辖范围内";
    case 409:
      return `当前状态下不能这样操作${reason}`;
    case 422:
      return `填写的内容不符合要求${reason}`;
    case 503:
      return `服务暂时不可用，请稍后再试${reason}`;
    default:
      return `操作失败（${error.status}）${reason}`;
  }
}
