/* Registers the service worker (templates/sw.js at /sw.js) and keeps the offline copy honest.
 *
 * - A page loaded from the network asks the worker to bring the device's copy up to date.
 * - A page shown from the copy (the worker filled in #offline-banner) waits for the network:
 *   when it is back, the page hides its content, lets the worker refresh the copy (dropping what
 *   was lifted or ended meanwhile) and loads itself again from the network.
 */
(function () {
  "use strict";

  if (!("serviceWorker" in navigator)) return;
  var script = document.currentScript;
  var workerUrl = (script && script.dataset.worker) || "/sw.js";
  var WAIT_MS = 10000;

  function fromCopy() {
    var banner = document.getElementById("offline-banner");
    return Boolean(banner && banner.dataset.offlineCopy === "true");
  }

  /* Resolves when the worker is done, after WAIT_MS at most, and never rejects: the page goes
   * on whatever became of the worker (replaced by a new version, stopped, unregistered). */
  function tellWorker(message) {
    var answered = navigator.serviceWorker.ready.then(function (registration) {
      return new Promise(function (resolve) {
        var channel = new MessageChannel();
        channel.port1.onmessage = resolve;
        registration.active.postMessage(message, [channel.port2]);
      });
    });
    var waited = new Promise(function (resolve) { setTimeout(resolve, WAIT_MS); });
    return Promise.race([answered, waited]).catch(function () {});
  }

  /* The `online` event often comes before the server can be reached: the worker says whether it
   * reached it; if not, ask again each second, ten times at most, then load the page anyway. */
  function backOnline() {
    document.documentElement.classList.add("is-reconnecting");
    var banner = document.getElementById("offline-banner");
    if (banner) banner.textContent = "Back online - checking for changes";
    var tries = 0;
    (function attempt() {
      tellWorker({type: "back-online"}).then(function (answer) {
        var unreachable = answer && answer.data && answer.data.online === false;
        if (unreachable && ++tries < 10) {
          setTimeout(attempt, 1000);
        } else {
          window.location.reload();
        }
      });
    })();
  }

  navigator.serviceWorker.register(workerUrl, {scope: "/"}).catch(function () {});

  if (fromCopy()) {
    window.addEventListener("online", backOnline);
    if (navigator.onLine) {
      // Shown from the copy while the browser says it is online (the server did not answer):
      // try the network again shortly.
      setTimeout(function () { if (navigator.onLine) backOnline(); }, 30000);
    }
  } else if (navigator.onLine) {
    tellWorker({type: "page-loaded"});
    window.addEventListener("online", function () { tellWorker({type: "back-online"}); });
  }
})();
