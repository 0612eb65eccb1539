/* Acknowledge without a connection (issue 22): the page's part. static/js/sw-ack.js (loaded
 * before this) keeps the queue and sends it.
 *
 * - Acknowledge pressed offline, or whose POST fails for want of a network: the acknowledgement
 *   is saved on this device (its own id, the device's time, the page's CSRF token, the account)
 *   and the page says so; Background Sync is asked to send it (where the browser has it).
 * - Sent from here too: on the `online` event and on each page load while online.
 * - Answers (recorded, or refused with the reason) are shown on the officer's next page; the
 *   bulletin they are about is loaded again so it shows where it stands.
 * - An Order with a check of understanding is not acknowledged offline: the page says to answer
 *   the check when back online.
 * The account key and the send URL come from data- attributes of this script tag and the form.
 */
"use strict";

(function () {
  const SAVED = "Saved on this device - it will be sent when you are back online.";
  const CHECK = "Answer the check when you are back online.";
  const script = document.currentScript;
  const account = script && script.dataset.account;
  const queue = window.portalAckQueue;
  if (!account || !queue || !window.indexedDB) return;

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  /* The device's local time with its offset, e.g. 2026-12-04T09:12:05-05:00. */
  function deviceTime(now) {
    const pad = (n) => String(Math.abs(n)).padStart(2, "0");
    const offset = -now.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    return now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate()) +
      "T" + pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds()) +
      sign + pad(Math.trunc(offset / 60)) + ":" + pad(offset % 60);
  }

  function say(container, text, kind) {
    let list = container.querySelector(".offline-ack-messages");
    if (!list) {
      list = document.createElement("ul");
      list.className = "messages offline-ack-messages";
      const region = document.createElement("div");
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      region.appendChild(list);
      container.prepend(region);
    }
    const item = document.createElement("li");
    item.className = "message " + kind;
    item.textContent = text;
    list.appendChild(item);
    return item;
  }

  function pageTop() {
    return document.querySelector("#main .container") || document.body;
  }

  function showSaved(form) {
    form.querySelectorAll("button[type=submit]").forEach((button) => button.remove());
    if (!form.querySelector(".offline-ack-saved")) {
      say(form, SAVED, "warning").classList.add("offline-ack-saved");
    }
  }

  async function askForSync() {
    try {
      const registration = navigator.serviceWorker && await navigator.serviceWorker.getRegistration();
      if (registration && registration.sync) await registration.sync.register(queue.syncTag);
    } catch (error) { /* no Background Sync: the online event and the next page load send it */ }
  }

  async function save(form) {
    const bulletin = Number(form.dataset.bulletin);
    const version = Number(form.elements.version.value);
    const saved = await queue.items(account);
    if (!saved.some((item) => item.bulletin === bulletin && item.version === version)) {
      await queue.add({
        client_id: newId(), account, bulletin, version, device_time: deviceTime(new Date()),
        url: form.dataset.offlineUrl, csrf: csrfToken(), title: document.title,
      });
    }
    showSaved(form);
    askForSync();
  }

  async function acknowledge(form) {
    if (!navigator.onLine) return save(form);
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual",
      });
    } catch (error) {
      return save(form);  // the network failed on the way: keep it on the device
    }
    if (response.type === "opaqueredirect") {
      window.location.reload();  // recorded (or refused): the page says which
    } else {
      form.submit();  // anything else: the ordinary way shows what happened
    }
  }

  function watch(form) {
    const hasCheck = form.querySelector("[name=check]") !== null;
    form.addEventListener("submit", (event) => {
      if (hasCheck) {
        if (!navigator.onLine) {
          event.preventDefault();
          if (!form.querySelector(".offline-ack-check")) {
            say(form, CHECK, "warning").classList.add("offline-ack-check");
          }
        }
        return;
      }
      event.preventDefault();
      acknowledge(form).catch(() => form.submit());
    });
  }

  async function showNotices() {
    const notices = await queue.takeNotices(account);
    const here = Number((document.querySelector("form[data-offline-url]") || {dataset: {}}).dataset.bulletin);
    notices.forEach((notice) => {
      const about = notice.title && notice.bulletin !== here ? notice.title.split(" - ")[0] + ": " : "";
      say(pageTop(), about + notice.message, notice.ok ? "success" : "error");
    });
  }

  let sending = false;
  async function send() {
    if (sending || !navigator.onLine) return;
    sending = true;
    try {
      const answered = await queue.flush(account, csrfToken());
      answered.length ? reloadOrShow(answered) : await showNotices();
    } finally {
      sending = false;
    }
  }

  /* The bulletin on screen was just answered for: load it again (it shows where it stands and
   * the notice); otherwise show the notices here. */
  function reloadOrShow(answered) {
    const form = document.querySelector("form[data-offline-url]");
    if (form && answered.some((notice) => notice.bulletin === Number(form.dataset.bulletin))) {
      window.location.reload();
    } else {
      showNotices();
    }
  }

  async function start() {
    await queue.rememberAccount(account, csrfToken());
    const form = document.querySelector("form[data-offline-url]");
    if (form) {
      watch(form);
      const bulletin = Number(form.dataset.bulletin);
      const version = Number(form.elements.version.value);
      const saved = await queue.items(account);
      if (saved.some((item) => item.bulletin === bulletin && item.version === version)) showSaved(form);
    }
    await showNotices();
    await send();
  }

  window.addEventListener("online", () => { send(); });
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "portal-ack-sent") reloadOrShow(event.data.answered);
    });
  }
  window.portalOfflineAck = {flush: send};
  start().catch(() => {});
})();
