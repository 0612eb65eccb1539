// The bulletin form's time span, in the agency's time zone (the form's data-time-zone), which
// is how the server reads the fields, whatever zone the browser is in:
// - "+12 h / +36 h / +7 days" fill "Ends at" from when the bulletin takes effect (on the amend
//   page, from its current end: an extension);
// - "Until further notice" disables "Ends at" (the server refuses the two together).
(function () {
  "use strict";
  var loadedAt = performance.now();

  function pad(n) { return String(n).padStart(2, "0"); }

  function wallClock(instant, zone) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).formatToParts(instant).forEach(function (part) { parts[part.type] = part.value; });
    return parts;
  }

  // How far `zone` is ahead of UTC at `instant`, in milliseconds.
  function offsetAt(instant, zone) {
    var p = wallClock(new Date(instant), zone);
    var asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return asUtc - Math.floor(instant / 1000) * 1000;
  }

  // "2026-12-04T06:00" on the agency's clock -> milliseconds since the epoch.
  function fromWallClock(value, zone) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
    if (!m) { return null; }
    var asUtc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var first = asUtc - offsetAt(asUtc, zone);
    return asUtc - offsetAt(first, zone);
  }

  function toWallClock(instant, zone) {
    var p = wallClock(new Date(instant), zone);
    return p.year + "-" + p.month + "-" + p.day + "T" + pad(+p.hour % 24) + ":" + p.minute;
  }

  // The server's clock at page load, moved on by the time since: a wrong device clock is harmless.
  function now(form) {
    var served = Number(form.getAttribute("data-server-now")) * 1000;
    return served ? served + (performance.now() - loadedAt) : Date.now();
  }

  function syncEnd(form) {
    var box = form.elements.until_further_notice;
    var end = form.elements.expires_at;
    if (!box || !end) { return; }
    if (box.checked && !end.disabled) {
      end.setAttribute("data-kept-value", end.value);
      end.value = "";
    } else if (!box.checked && end.disabled) {
      end.value = end.value || end.getAttribute("data-kept-value") || "";
    }
    end.disabled = box.checked;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-ends-in-hours]");
    if (!button) { return; }
    var form = button.form;
    var zone = form.getAttribute("data-time-zone");
    var scheduled = form.querySelector("input[name=starts][value=at]");
    var startField = form.elements.effective_at;
    var from = Number(button.getAttribute("data-from")) * 1000;  // an extension: the current end
    var start = from || (scheduled && scheduled.checked && startField.value
      ? fromWallClock(startField.value, zone) : now(form));
    var hours = Number(button.getAttribute("data-ends-in-hours"));
    form.elements.until_further_notice.checked = false;
    syncEnd(form);
    form.elements.expires_at.value = toWallClock(start + hours * 3600 * 1000, zone);
  });

  document.addEventListener("change", function (event) {
    if (event.target.name === "until_further_notice") { syncEnd(event.target.form); }
  });

  function start() {
    document.querySelectorAll("form.bulletin-form").forEach(syncEnd);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
