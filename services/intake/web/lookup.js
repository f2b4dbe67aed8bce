// 查询我的诉求: tracking number plus the last four digits of the phone fetch a fresh token.

import { api, ApiError } from "./api.js";
import { $, say } from "./dom.js";
import { remember } from "./keep.js";

const TRACKING_NO = /^GZ\d{6}-[0-9A-Z]{6}$/;

function why(error) {
  if (!(error instanceof ApiError)) return "查询失败，请稍后重试";
  if (error.status === 404) return "没有找到：请核对受理编号和手机后四位（未留手机号的诉求无法查询）";
  if (error.status === 429) return "尝试次数过多，请 15 分钟后再试";
  if (error.status === 422) return "受理编号的格式应如 GZ260302-7K3Q9M";
  return error.message;
}

export function setUpLookup({ onFound }) {
  const form = $("#lookup-form");
  const tracking = $("#lookup-tracking");
  const phone = $("#lookup-phone");
  const error = $("#lookup-error");
  const submit = $("#lookup-submit");

  phone.addEventListener("input", () => {
    phone.value = phone.value.replace(/\D/g, "").slice(0, 4);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const trackingNo = tracking.value.trim().toUpperCase().replace(/\s+/g, "");
    const last4 = phone.value.trim();
    if (!TRACKING_NO.test(trackingNo)) {
      say(error, "受理编号的格式应如 GZ260302-7K3Q9M");
      tracking.focus();
      return;
    }
    if (!/^\d{4}$/.test(last4)) {
      say(error, "请输入手机号的后四位数字");
      phone.focus();
      return;
    }
    say(error, "");
    submit.disabled = true;
    say(submit, "正在查询…");
    try {
      const found = await api.lookup(trackingNo, last4);
      remember({ id: found.id, token: found.citizen_token, trackingNo: found.tracking_no });
      form.reset();
      onFound(found);
    } catch (failure) {
      say(error, why(failure));
    } finally {
      submit.disabled = false;
      say(submit, "查询");
    }
  });
}

export function lookupNotice(text) {
  say($("#lookup-error"), text);
}
