// Confirmation before destructive actions, as a real dialog.
//
// A form asks for confirmation by carrying data attributes (plain text, escaped by the template; never
// JavaScript):
//   <form method="post" data-confirm="Remove ann@example.com from Acme?"
//         data-confirm-title="Remove member" data-confirm-action="Remove">
// Submitting it opens a modal <dialog> with the title, the message, Cancel and the confirm button. Cancel,
// Esc or a click outside keep everything as it was; confirming submits the form (with the button that was
// pressed, so its name/value are sent) with `confirmed=yes` added, so a view can show its own confirmation
// page to a browser without JavaScript (a POST without it). The Content Security Policy forbids inline
// handlers, which is why this listens on the document instead.

const DIALOG_ID = "confirm-dialog";

function buildDialog() {
  const dialog = document.createElement("dialog");
  dialog.id = DIALOG_ID;
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", `${DIALOG_ID}-title`);
  dialog.setAttribute("aria-describedby", `${DIALOG_ID}-message`);
  const title = document.createElement("h2");
  title.id = `${DIALOG_ID}-title`;
  const message = document.createElement("p");
  message.id = `${DIALOG_ID}-message`;
  const actions = document.createElement("div");
  actions.className = "dialog-actions";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.dataset.role = "cancel";
  cancel.textContent = "Cancel";
  const confirm = document.createElement("button");
  confirm.type = "button";
  confirm.dataset.role = "confirm";
  confirm.className = "danger";
  actions.append(cancel, confirm);
  dialog.append(title, message, actions);
  document.body.append(dialog);
  return dialog;
}

function focusable(dialog) {
  return [...dialog.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")]
    .filter((el) => !el.disabled);
}

function ask({ title, message, action }, returnFocusTo) {
  const dialog = document.getElementById(DIALOG_ID) || buildDialog();
  dialog.querySelector("h2").textContent = title;
  dialog.querySelector("p").textContent = message;
  const confirmButton = dialog.querySelector("[data-role=confirm]");
  const cancelButton = dialog.querySelector("[data-role=cancel]");
  confirmButton.textContent = action;

  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.removeEventListener("keydown", onKey);
      dialog.removeEventListener("click", onClick);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      if (returnFocusTo && returnFocusTo.isConnected) returnFocusTo.focus();
      resolve(answer);
    };
    const onKey = (event) => {
      if (event.key !== "Tab") return;
      // Keep focus inside the dialog (showModal makes the page inert; this also stops Tab from leaving
      // for the browser's own controls).
      const items = focusable(dialog);
      const first = items[0];
      const last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    };
    const onClick = (event) => {
      const role = event.target.closest("button")?.dataset.role;
      if (role === "confirm") finish(true);
      else if (role === "cancel" || event.target === dialog) finish(false); // a click on the backdrop
    };
    const onCancel = (event) => {
      // Esc
      event.preventDefault();
      finish(false);
    };
    dialog.addEventListener("keydown", onKey);
    dialog.addEventListener("click", onClick);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    cancelButton.focus(); // the safe choice is the default one
  });
}

document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (form.dataset.confirmed === "yes") return;
    // Capture phase: stop the submission (and any other handler, e.g. htmx) until the person confirms.
    event.preventDefault();
    event.stopImmediatePropagation();
    const submitter = event.submitter;
    const details = {
      title: form.dataset.confirmTitle || "Are you sure?",
      message: form.dataset.confirm,
      action: form.dataset.confirmAction || submitter?.textContent.trim() || "Confirm",
    };
    ask(details, submitter).then((confirmed) => {
      if (!confirmed) return;
      form.dataset.confirmed = "yes";
      if (!form.querySelector("input[name=confirmed]")) {
        const flag = document.createElement("input");
        flag.type = "hidden";
        flag.name = "confirmed";
        flag.value = "yes";
        form.append(flag);
      }
      try {
        form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      } finally {
        delete form.dataset.confirmed;
      }
    });
  },
  true,
);
