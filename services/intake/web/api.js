// Talking to intake's API. Every answer that is not 2xx becomes an ApiError with a reason a
// citizen can read; a dropped connection becomes an ApiError with status 0.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const NETWORK_TROUBLE = "网络连接不稳定，请稍后重试";

function reason(status, body) {
  // The server's reason for a limit is in English; the citizen needs to know to wait.
  if (status === 429) return "提交过于频繁，请稍后再试";
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => item.msg || String(item)).join("；");
  }
  if (typeof detail === "string" && detail) return detail;
  if (status === 413) return "照片或内容太大";
  if (status >= 500) return "服务暂时不可用，请稍后重试";
  return `请求失败（${status}）`;
}

async function call(path, { method = "GET", json, form, token, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, NETWORK_TROUBLE);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, reason(response.status, body));
  return body;
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Worth trying again with the same request: no answer, or the server briefly unwell.
export function transient(error) {
  return error instanceof ApiError && (error.status === 0 || error.status === 503 || error.status === 502 || error.status === 504);
}

// Retries with the same Idempotency-Key are safe: the server files the complaint once.
export async function withRetries(attempt, onRetry, tries = 4) {
  for (let round = 1; ; round += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!transient(error) || round >= tries) throw error;
      onRetry(round);
      await pause(1000 * 2 ** (round - 1));
    }
  }
}

export const api = {
  categories: () => call("/api/v1/categories"),
  jurisdictions: () => call("/api/v1/jurisdictions"),
  submit: (complaint, idempotencyKey) =>
    call("/api/v1/complaints", {
      method: "POST",
      json: complaint,
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  view: (id, token) => call(`/api/v1/complaints/${encodeURIComponent(id)}`, { token }),
  lookup: (trackingNo, phoneLast4) =>
    call("/api/v1/complaints/lookup", {
      method: "POST",
      json: { tracking_no: trackingNo, phone_last4: phoneLast4 },
    }),
  uploadPhoto: (id, token, blob, name) => {
    const form = new FormData();
    form.append("photo", blob, name);
    return call(`/api/v1/complaints/${encodeURIComponent(id)}/photos`, {
      method: "POST",
      form,
      token,
    });
  },
  rate: (id, token, rating) =>
    call(`/api/v1/complaints/${encodeURIComponent(id)}/rating`, {
      method: "POST",
      json: { rating },
      token,
    }),
  // A photo needs the token, which an <img src> cannot send: fetch it, show it as a blob: URL.
  photoBlob: async (url, token) => {
    let response;
    try {
      response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    } catch {
      throw new ApiError(0, NETWORK_TROUBLE);
    }
    if (!response.ok) throw new ApiError(response.status, "照片无法显示");
    return response.blob();
  },
};

// An Idempotency-Key from the browser's own random source (works outside HTTPS too, where
// crypto.randomUUID is missing).
export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
