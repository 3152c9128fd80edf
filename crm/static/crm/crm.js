// CRM pages: "select all" on record lists, and refusing an oversize CSV before it is uploaded.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.classList && box.classList.contains("select-all")) {
    box.closest("table").querySelectorAll('input[name="ids"]').forEach((b) => { b.checked = box.checked; });
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.classList || !form.classList.contains("import-upload")) return;
  const max = Number(form.dataset.maxBytes || 0);
  const input = form.querySelector('input[type="file"]');
  const file = input && input.files && input.files[0];
  if (max && file && file.size > max) {
    event.preventDefault();
    form.querySelector(".size-error").hidden = false;
  }
});
