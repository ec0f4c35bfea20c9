// Calls BoxSync's JSON routes from our iframe pages. A fresh context token from Jira
// (AP.context.getToken) is preferred; the short-lived session token rendered into the page is the
// fallback when the bridge is not available.
window.BoxSync = {
  async token() {
    if (window.AP && AP.context && AP.context.getToken) {
      try { return await new Promise((resolve) => AP.context.getToken(resolve)); } catch (e) { /* fall back */ }
    }
    return document.body.dataset.sessionToken;
  },
  async api(path, options = {}) {
    const token = await this.token();
    const resp = await fetch(document.body.dataset.baseUrl + path, {
      ...options,
      headers: { ...(options.headers || {}), Authorization: "JWT " + token, Accept: "application/json" },
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const error = new Error(body.error || ("BoxSync answered " + resp.status));
      error.status = resp.status;
      error.field = body.field;  // the request's field at fault (422), for the page to point at
      throw error;
    }
    return body;
  },
};
