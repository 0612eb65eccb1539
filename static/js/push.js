/* The Devices page (bulletins.push_views): "Alert this device" and "Stop alerts".
 *
 * Alert this device: asks the browser's permission, subscribes through the service worker's
 * registration (/sw.js) with the portal's VAPID public key, and POSTs the subscription JSON
 * (with the CSRF token) to the page's add URL. Stop alerts on this device also unsubscribes the
 * browser before the form is sent.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-push]");
  var button = root && root.querySelector("[data-push-subscribe]");
  var status = root && root.querySelector("[data-push-status]");
  var supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  function say(text) {
    if (status) status.textContent = text;
  }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function applicationServerKey(text) {
    var base64 = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(base64);
    var key = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) key[i] = raw.charCodeAt(i);
    return key;
  }

  function registration() {
    return navigator.serviceWorker.getRegistration("/").then(function (found) {
      return found || navigator.serviceWorker.register("/sw.js", {scope: "/"});
    }).then(function () {
      return navigator.serviceWorker.ready;
    });
  }

  function currentSubscription() {
    if (!supported) return Promise.resolve(null);
    return navigator.serviceWorker.getRegistration("/").then(function (found) {
      return found ? found.pushManager.getSubscription() : null;
    });
  }

  function markThisDevice(subscription) {
    document.querySelectorAll("[data-endpoint]").forEach(function (item) {
      var mine = Boolean(subscription) && item.dataset.endpoint === subscription.endpoint;
      var label = item.querySelector("[data-this-device]");
      if (label) label.hidden = !mine;
      item.dataset.thisDevice = mine ? "true" : "false";
    });
  }

  function subscribe() {
    button.disabled = true;
    say("Asking this browser for permission...");
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        throw new Error("Alerts are blocked in this browser's settings for this site. Allow notifications, then try again.");
      }
      say("Setting up alerts...");
      return registration();
    }).then(function (reg) {
      return reg.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: applicationServerKey(root.dataset.vapidKey),
      });
    }).then(function (subscription) {
      return fetch(root.dataset.addUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(subscription.toJSON()),
      });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new Error(body.error || "The portal could not save this device. Try again.");
        window.location.reload();
      });
    }).catch(function (error) {
      say(error && error.message ? error.message : "This device could not be set up for alerts.");
      button.disabled = false;
    });
  }

  document.querySelectorAll("form[data-push-stop]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var item = form.closest("[data-endpoint]");
      if (!item || item.dataset.thisDevice !== "true" || form.dataset.unsubscribed) return;
      event.preventDefault();
      currentSubscription().then(function (subscription) {
        return subscription ? subscription.unsubscribe() : true;
      }).catch(function () {}).then(function () {
        form.dataset.unsubscribed = "true";
        form.submit();
      });
    });
  });

  currentSubscription().then(markThisDevice).catch(function () {});

  if (!root) return;
  if (!supported) {
    say("This browser cannot show alerts on the lock screen. On iPhone, add the portal to your Home Screen first.");
    return;
  }
  if (Notification.permission === "denied") {
    say("Alerts are blocked in this browser's settings for this site.");
    return;
  }
  currentSubscription().then(function (subscription) {
    var listed = subscription && document.querySelector('[data-this-device="true"]');
    say(listed ? "This device shows alerts." : "This device does not show alerts yet.");
    button.textContent = listed ? "Alert this device again" : "Alert this device";
    button.hidden = false;
    button.addEventListener("click", subscribe);
  }).catch(function () {
    button.hidden = false;
    button.addEventListener("click", subscribe);
  });
})();
