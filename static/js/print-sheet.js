// The roll-call sheet's Print button (the CSP forbids inline script).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
