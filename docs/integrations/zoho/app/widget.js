// QuickSend's texts in a Zoho CRM record's right panel. On every PageLoad (opening a record, switching to
// another) the Deluge function "quicksend_launch" mints a fresh launch URL server-side: Zoho tells it who is
// logged in (zoho.loginuserid), so the browser cannot claim to be someone else, and the connection holds
// QuickSend's API token. The URL is valid 60 seconds, once, so it is opened at once.
(function () {
  var frame = document.getElementById("quicksend");
  var status = document.getElementById("status");

  function show(text) {
    status.textContent = text;
    status.hidden = false;
    frame.hidden = true;
  }

  ZOHO.embeddedApp.on("PageLoad", function (data) {
    var entityId = Array.isArray(data.EntityId) ? data.EntityId[0] : data.EntityId;
    if (!entityId) {
      show("Save the record first: its texts will show here.");
      return;
    }
    show("Opening QuickSend…");
    ZOHO.CRM.FUNCTIONS.execute("quicksend_launch", {
      arguments: JSON.stringify({ module: data.Entity, record_id: String(entityId) }),
    })
      .then(function (answer) {
        var output = JSON.parse(answer.details.output || "{}");
        if (!output.url) throw new Error(output.detail || "QuickSend could not open this record.");
        frame.src = output.url;
        frame.hidden = false;
        status.hidden = true;
      })
      .catch(function (error) {
        show(error.message || "QuickSend could not be reached.");
      });
  });

  ZOHO.embeddedApp.init();
})();
