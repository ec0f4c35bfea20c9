/* jirasim stand-in for https://connect-cdn.atl-paas.net/all.js: the AP bridge inside a Connect iframe.
   Every call is a postMessage to the host page (window.parent), answered by the host page script in
   jirasim's host templates. Supported: AP.context.getToken, AP.context.getContext (callback and
   Promise), AP.resize / AP.sizeToParent (host-side resize; no-ops without a host). */
(function () {
  "use strict";
  var pending = {};
  var seq = 0;

  function call(type, data) {
    return new Promise(function (resolve, reject) {
      if (!window.parent || window.parent === window) {
        reject(new Error("AP: not running inside a Jira host page"));
        return;
      }
      var id = ++seq;
      pending[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage({ jirasim: 1, id: id, type: type, data: data || null }, "*");
    });
  }

  window.addEventListener("message", function (event) {
    var msg = event.data;
    if (!msg || msg.jirasim !== 1 || !pending[msg.id]) return;
    var p = pending[msg.id];
    delete pending[msg.id];
    if (msg.error) p.reject(new Error(msg.error));
    else p.resolve(msg.result);
  });

  function withCallback(promise, callback) {
    if (typeof callback === "function") {
      promise.then(function (value) { callback(value); }, function (err) { callback(null, err); });
    }
    return promise;
  }

  window.AP = {
    context: {
      getToken: function (callback) { return withCallback(call("getToken"), callback); },
      getContext: function (callback) { return withCallback(call("getContext"), callback); }
    },
    resize: function (width, height) { call("resize", { width: width, height: height }).catch(function () {}); },
    sizeToParent: function () {},
    request: function () {
      return Promise.reject(new Error("AP.request is not supported by jirasim; call your backend instead"));
    }
  };
})();
