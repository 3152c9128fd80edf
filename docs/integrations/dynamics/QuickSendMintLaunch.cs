// Dataverse plug-in behind the Custom API "qs_MintLaunch" (unbound, function off; request parameters
// EntityName and RecordId (String), response property Url (String)). Register it on the Custom API's main
// operation with this secure configuration (JSON): {"host": "https://quicksend.example.com", "token": "qs_…"}
// (a QuickSend admin's API token). The calling user comes from Dataverse, never from the browser.
using System;
using System.Net.Http;
using System.Runtime.Serialization.Json;
using System.Text;
using Microsoft.Xrm.Sdk;

public class QuickSendMintLaunch : IPlugin
{
    private readonly string host;
    private readonly string token;

    public QuickSendMintLaunch(string unsecure, string secure)
    {
        var config = Newtonsoft.Json.Linq.JObject.Parse(secure ?? "{}");
        host = (string)config["host"];
        token = (string)config["token"];
    }

    public void Execute(IServiceProvider serviceProvider)
    {
        var context = (IPluginExecutionContext)serviceProvider.GetService(typeof(IPluginExecutionContext));
        var factory = (IOrganizationServiceFactory)serviceProvider.GetService(typeof(IOrganizationServiceFactory));
        var service = factory.CreateOrganizationService(null);
        var user = service.Retrieve("systemuser", context.InitiatingUserId,
            new Microsoft.Xrm.Sdk.Query.ColumnSet("internalemailaddress"));
        var body = new Newtonsoft.Json.Linq.JObject
        {
            ["crm"] = "dynamics",
            ["crm_user_id"] = context.InitiatingUserId.ToString("B").ToUpperInvariant(),
            ["email"] = user.GetAttributeValue<string>("internalemailaddress") ?? "",
            ["record_type"] = (string)context.InputParameters["EntityName"],
            ["external_id"] = (string)context.InputParameters["RecordId"],
        };
        using (var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            client.DefaultRequestHeaders.Add("Authorization", "Token " + token);
            var response = client.PostAsync(host + "/api/v1/embed/tokens",
                new StringContent(body.ToString(), Encoding.UTF8, "application/json")).Result;
            var text = response.Content.ReadAsStringAsync().Result;
            if ((int)response.StatusCode != 201)
                throw new InvalidPluginExecutionException("QuickSend could not open this record: " + text);
            context.OutputParameters["Url"] = (string)Newtonsoft.Json.Linq.JObject.Parse(text)["url"];
        }
    }
}
