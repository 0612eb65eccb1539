// "+12 h / +36 h / +7 days": fill "Ends at" from when the bulletin takes effect.
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function toLocalInput(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-ends-in-hours]");
    if (!button) { return; }
    var form = button.form;
    var scheduled = form.querySelector("input[name=starts][value=at]");
    var startField = form.elements.effective_at;
    var start = scheduled && scheduled.checked && startField.value ? new Date(startField.value) : new Date();
    var hours = Number(button.getAttribute("data-ends-in-hours"));
    form.elements.expires_at.value = toLocalInput(new Date(start.getTime() + hours * 3600 * 1000));
    form.elements.until_further_notice.checked = false;
  });
})();
