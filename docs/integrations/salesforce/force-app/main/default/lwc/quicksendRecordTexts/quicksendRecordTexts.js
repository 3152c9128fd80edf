import { LightningElement, api } from "lwc";
import launchUrl from "@salesforce/apex/QuickSendLaunch.launchUrl";

// A record page's QuickSend texts. The launch URL is minted by Apex each time the record changes and is
// valid 60 seconds, once: the frame opens it at once.
export default class QuickSendRecordTexts extends LightningElement {
  @api height = 600;
  url;
  error;
  _recordId;

  @api
  get recordId() {
    return this._recordId;
  }
  set recordId(value) {
    this._recordId = value;
    this.load();
  }

  get unsaved() {
    return !this._recordId;
  }

  get frameStyle() {
    return `border:0;width:100%;height:${this.height}px`;
  }

  async load() {
    this.url = undefined;
    this.error = undefined;
    if (!this._recordId) return;
    try {
      this.url = await launchUrl({ recordId: this._recordId });
    } catch (e) {
      this.error = (e && e.body && e.body.message) || "QuickSend could not be reached.";
    }
  }
}
