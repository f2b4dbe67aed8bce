// The complaint form: category, what happened, where, photos, phone (and whether the village
// may know who sent it) — then one submit that a double tap or a flaky connection can never
// turn into two complaints.

import { api, newKey, withRetries } from "./api.js";
import { $, el, say } from "./dom.js";
import { remember } from "./keep.js";
import { MAX_PHOTOS, preparePhotos } from "./photos.js";

const PHONE = /^\+?[0-9][0-9 -]{4,19}$/;

export function setUpForm({ onSubmitted }) {
  const form = $("#complaint-form");
  const description = $("#description");
  const township = $("#township");
  const village = $("#village");
  const locate = $("#locate");
  const locateStatus = $("#locate-status");
  const photoInput = $("#photos");
  const photoList = $("#photo-list");
  const photoError = $("#photo-error");
  const formError = $("#form-error");
  const submit = $("#submit");
  const phoneInput = $("#phone");
  const concealField = $("#conceal-field");
  const conceal = $("#conceal");

  // One key per request as it stands: a retry or a second tap reuses it, so the server files
  // the complaint once; any change to the form makes it a different request with a new key.
  let idempotencyKey = null;
  let position = null;
  let chosen = [];
  let busy = false;
  let townships = [];

  const changed = () => {
    idempotencyKey = null;
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);

  // Keeping one's identity from the village only means something once there is one to keep:
  // the choice appears with the phone number and goes (unticked) when the number is cleared.
  function showConceal() {
    const given = phoneInput.value.trim() !== "";
    concealField.hidden = !given;
    if (!given) conceal.checked = false;
  }
  phoneInput.addEventListener("input", showConceal);

  description.addEventListener("input", () => {
    say($("#description-count"), `${description.value.length} / 2000`);
  });

  loadCategories();
  loadPlaces();

  async function loadCategories() {
    const holder = $("#categories");
    try {
      const categories = await withRetries(() => api.categories(), () => {});
      holder.replaceChildren(
        ...categories.map((category, index) => {
          const id = `category-${index}`;
          const input = el("input", {
            className: "chip-input",
            attrs: { type: "radio", name: "category", id, value: category.name },
          });
          return el("span", { className: "chip" }, [
            input,
            el("label", { text: category.name, attrs: { for: id } }),
          ]);
        }),
      );
    } catch (error) {
      say($("#categories-loading"), "类别加载失败，可直接填写内容提交");
    }
  }

  async function loadPlaces() {
    try {
      const tree = await withRetries(() => api.jurisdictions(), () => {});
      townships = tree.children || [];
      township.replaceChildren(
        el("option", { text: "请选择乡镇", attrs: { value: "" } }),
        ...townships.map((t) => el("option", { text: t.name, attrs: { value: t.code } })),
      );
    } catch {
      township.replaceChildren(el("option", { text: "加载失败，请刷新", attrs: { value: "" } }));
    }
  }

  township.addEventListener("change", () => {
    const picked = townships.find((t) => t.code === township.value);
    const villages = picked ? picked.children || [] : [];
    village.replaceChildren(
      el("option", { text: picked ? "请选择村(社区)" : "请先选择乡镇", attrs: { value: "" } }),
      ...villages.map((v) => el("option", { text: v.name, attrs: { value: v.code } })),
    );
    village.disabled = !picked;
  });

  village.addEventListener("change", () => {
    if (village.value && position) {
      position = null;
      say(locateStatus, "将按所选村(社区)提交");
    }
  });

  locate.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      say(locateStatus, "此浏览器无法定位，请选择所在村(社区)");
      return;
    }
    say(locateStatus, "正在获取位置…");
    navigator.geolocation.getCurrentPosition(
      (found) => {
        position = {
          lat: Number(found.coords.latitude.toFixed(6)),
          lon: Number(found.coords.longitude.toFixed(6)),
        };
        township.value = "";
        township.dispatchEvent(new Event("change"));
        changed();
        const metres = Math.round(found.coords.accuracy || 0);
        say(locateStatus, metres ? `已获取当前位置（精度约 ${metres} 米）` : "已获取当前位置");
      },
      () => say(locateStatus, "无法获取位置（可能未允许定位），请选择所在村(社区)"),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });

  photoInput.addEventListener("change", async () => {
    const files = Array.from(photoInput.files || []);
    photoInput.value = "";
    const { accepted, refused } = await preparePhotos(files, chosen.length);
    chosen = chosen.concat(accepted);
    say(photoError, refused.join("；"));
    renderPhotos();
  });

  function renderPhotos() {
    photoList.replaceChildren(
      ...chosen.map((photo, index) => {
        const remove = el("button", {
          className: "thumb-remove",
          text: "×",
          attrs: { type: "button", "aria-label": `删除第 ${index + 1} 张照片` },
        });
        remove.addEventListener("click", () => {
          URL.revokeObjectURL(photo.preview);
          chosen.splice(index, 1);
          renderPhotos();
        });
        return el("li", { className: "thumb" }, [
          el("img", { attrs: { src: photo.preview, alt: `第 ${index + 1} 张照片` } }),
          remove,
        ]);
      }),
    );
    $("#photos-button").hidden = chosen.length >= MAX_PHOTOS;
  }

  function complaintBody() {
    const category = form.querySelector('input[name="category"]:checked');
    const text = description.value.trim();
    const phone = phoneInput.value.trim();
    const address = $("#address").value.trim();
    if (!category && form.querySelector('input[name="category"]')) {
      return { problem: "请选择问题类别", focus: form.querySelector('input[name="category"]') };
    }
    if (!text) return { problem: "请写一下发生了什么", focus: description };
    if (!position && !village.value) {
      return {
        problem: township.value ? "请选择村(社区)" : "请使用当前位置，或选择乡镇和村(社区)",
        focus: township.value ? village : locate,
      };
    }
    if (phone && !PHONE.test(phone)) return { problem: "手机号只能包含数字", focus: phoneInput };
    const location = position ? { ...position } : { village_code: village.value };
    if (address) location.address = address;
    const body = { description: text, location, channel: "web" };
    if (category) body.category = category.value;
    if (phone) body.contact = conceal.checked ? { phone, conceal_from_village: true } : { phone };
    return { body };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return; // a double tap while the first is on its way
    say(formError, "");
    const { body, problem, focus } = complaintBody();
    if (problem) {
      say(formError, problem);
      if (focus) focus.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    say(submit, "正在提交…");
    idempotencyKey = idempotencyKey || newKey();
    const key = idempotencyKey;
    try {
      const receipt = await withRetries(
        () => api.submit(body, key),
        (round) => say(formError, `网络不稳定，正在重试（第 ${round} 次）…`),
      );
      remember({ id: receipt.id, token: receipt.citizen_token, trackingNo: receipt.tracking_no });
      const photos = chosen;
      chosen = [];
      form.reset();
      position = null;
      idempotencyKey = null;
      say(locateStatus, "");
      say(formError, "");
      say(photoError, "");
      township.dispatchEvent(new Event("change"));
      showConceal();
      renderPhotos();
      say($("#description-count"), "0 / 2000");
      onSubmitted(receipt, photos);
    } catch (error) {
      say(formError, `提交失败：${error.message}`);
    } finally {
      busy = false;
      submit.disabled = false;
      say(submit, "提交");
    }
  });
}
