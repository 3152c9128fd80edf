// Profile → Notifications: ticking "Desktop notifications" asks the browser's permission right away (the
// browser only asks after a click).
const form = document.querySelector("[data-notification-preferences]");
const box = form?.querySelector("[data-ask-permission]");
box?.addEventListener("change", () => {
  if (box.checked && "Notification" in window && Notification.permission === "default") {
    Notification.requestPermission();
  }
});
