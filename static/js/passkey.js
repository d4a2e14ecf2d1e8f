/* Gatehouse passkeys: runs navigator.credentials.create/get with the options the page holds
   (a <script type="application/json"> block: no inline script, so the CSP's script-src 'self'
   holds) and posts the answer, as JSON with binary values in base64url, in the form's hidden
   "credential" field. Pages that use it: the passkey set-up, the code page, account/passkeys. */
(function () {
  "use strict";

  function toBuffer(value) {
    var s = value.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBuffer(c.id) }); });
  }

  function creationOptions(options) {
    var p = Object.assign({}, options.publicKey);
    p.challenge = toBuffer(p.challenge);
    p.user = Object.assign({}, p.user, { id: toBuffer(p.user.id) });
    p.excludeCredentials = descriptors(p.excludeCredentials);
    return { publicKey: p };
  }

  function requestOptions(options) {
    var p = Object.assign({}, options.publicKey);
    p.challenge = toBuffer(p.challenge);
    p.allowCredentials = descriptors(p.allowCredentials);
    return { publicKey: p };
  }

  function credentialJSON(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: { clientDataJSON: toBase64url(r.clientDataJSON) },
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    };
    if (credential.authenticatorAttachment) { out.authenticatorAttachment = credential.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toBase64url(r.authenticatorData);
      out.response.signature = toBase64url(r.signature);
      if (r.userHandle) { out.response.userHandle = toBase64url(r.userHandle); }
    }
    return out;
  }

  /* For single-page apps and tests: the same conversions, for options from the API. */
  window.gatehousePasskey = {
    create: function (options) { return navigator.credentials.create(creationOptions(options)).then(credentialJSON); },
    get: function (options) { return navigator.credentials.get(requestOptions(options)).then(credentialJSON); }
  };

  function start(form) {
    var status = form.querySelector("[data-passkey-status]");
    var optionsNode = document.getElementById(form.getAttribute("data-options"));
    var options = JSON.parse(optionsNode.textContent);
    var ceremony = form.getAttribute("data-passkey") === "create" ? window.gatehousePasskey.create : window.gatehousePasskey.get;
    if (!window.PublicKeyCredential) {
      if (status) { status.textContent = form.getAttribute("data-unsupported"); }
      return;
    }
    ceremony(options).then(function (credential) {
      form.querySelector("input[name=credential]").value = JSON.stringify(credential);
      form.submit();
    }, function () {
      if (status) { status.textContent = form.getAttribute("data-cancelled"); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-passkey]");
    Array.prototype.forEach.call(forms, function (form) {
      var button = form.querySelector("button");
      if (button) { button.hidden = false; }
      form.addEventListener("submit", function (event) {
        if (!form.querySelector("input[name=credential]").value) {
          event.preventDefault();
          start(form);
        }
      });
      if (form.hasAttribute("data-autostart")) { start(form); }
    });
  });
}());
