// Small progressive enhancements shared by all pages. Loaded once by the layout (some pages still load it
// again as a classic script: the guard keeps one set of handlers).
(() => {
  if (window.quicksendApp) return;
  window.quicksendApp = true;

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(() => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });

  // Menus made of <details> close on Escape and on a click elsewhere.
  document.addEventListener("click", (event) => {
    for (const open of document.querySelectorAll("details.usermenu[open]")) {
      if (!open.contains(event.target)) open.open = false;
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const open of document.querySelectorAll("details.usermenu[open]")) {
      open.open = false;
      open.querySelector("summary")?.focus();
    }
  });
})();
