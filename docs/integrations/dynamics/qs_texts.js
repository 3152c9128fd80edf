// A Dynamics 365 form's QuickSend texts (web resource qs_texts.html, "Pass record object-type code and unique
// identifier as parameters" on). The launch URL comes from the Custom API qs_MintLaunch, whose plug-in calls
// QuickSend server-side with the calling user (Dataverse says who it is) and the API token kept in the
// plug-in's secure configuration: nothing secret reaches this page.
(function () {
  function show(text) {
    var status = document.getElementById("status");
    status.textContent = text;
    status.hidden = false;
    document.getElementById("quicksend").hidden = true;
  }

  function params() {
    var found = {};
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      found[key] = value;
    });
    if (found.data) {
      new URLSearchParams(decodeURIComponent(found.data)).forEach(function (value, key) {
        found[key] = value;
      });
    }
    return found;
  }

  window.addEventListener("load", function () {
    var p = params();
    var id = p.id || ""; // "{6F9619FF-8B86-D011-B42D-00C04FC964FF}"; QuickSend drops the braces
    var entity = p.typename || "";
    if (!id) {
      show("Save the record first: its texts will show here.");
      return;
    }
    var request = {
      EntityName: entity,
      RecordId: id,
      getMetadata: function () {
        return {
          boundParameter: null,
          operationType: 0,
          operationName: "qs_MintLaunch",
          parameterTypes: {
            EntityName: { typeName: "Edm.String", structuralProperty: 1 },
            RecordId: { typeName: "Edm.String", structuralProperty: 1 },
          },
        };
      },
    };
    var xrm = window.Xrm || (window.parent && window.parent.Xrm);
    xrm.WebApi.online
      .execute(request)
      .then(function (response) {
        return response.json();
      })
      .then(function (answer) {
        var frame = document.getElementById("quicksend");
        frame.src = answer.Url;
        frame.hidden = false;
        document.getElementById("status").hidden = true;
      })
      .catch(function (error) {
        show(error.message || "QuickSend could not be reached.");
      });
  });
})();
