/* confhub web UI: the editor, and live updates from the watch stream. No framework, no build:
   pages work without this file; it only adds highlighting and live notices. */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("live-region");
    if (region) { region.textContent = text; }
  }

  // ---------------------------------------------------------------- editor
  function editorMode(fmt) {
    return fmt === "yaml" ? "yaml" : { name: "javascript", json: true };
  }

  // The server's validation of what is typed, shown under the editor (the preview still gates
  // the save). Sent as the same form the preview gets.
  function liveCheck(area) {
    var url = area.getAttribute("data-check-url");
    var out = document.getElementById("live-check");
    if (!url || !out || !area.form) { return; }
    var body = new URLSearchParams(new FormData(area.form));
    if (!body.get("namespace") || !body.get("key")) { return; }
    fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { out.innerHTML = html; });
  }

  function setUpEditors() {
    if (!window.CodeMirror) { return; }
    document.querySelectorAll("textarea[data-editor]").forEach(function (area) {
      var cm = window.CodeMirror.fromTextArea(area, {
        mode: editorMode(area.getAttribute("data-editor")),
        lineNumbers: true,
        lineWrapping: true,
        indentUnit: 2,
        tabSize: 2,
        viewportMargin: Infinity,
        screenReaderLabel: "Value",
        extraKeys: { Tab: false, "Shift-Tab": false } // keep Tab for moving focus
      });
      var timer = null;
      cm.on("change", function () {
        cm.save();
        clearTimeout(timer);
        timer = setTimeout(function () { liveCheck(area); }, 500);
      });
      var form = area.form;
      var select = form && form.querySelector("[data-editor-mode]");
      if (select) {
        select.addEventListener("change", function () {
          cm.setOption("mode", editorMode(select.value));
        });
      }
    });
  }

  // ---------------------------------------------------------------- live updates
  function streamUrl(el) {
    var tenant = el.getAttribute("data-live-tenant");
    var params = new URLSearchParams();
    params.set("since", el.getAttribute("data-since") || "0");
    ["namespace", "key", "env"].forEach(function (name) {
      var value = el.getAttribute("data-" + name);
      if (value) { params.set(name, value); }
    });
    return "/ui/t/" + encodeURIComponent(tenant) + "/events?" + params.toString();
  }

  function watchRecent(list) {
    var source = new EventSource(streamUrl(list));
    var tenant = list.getAttribute("data-live-tenant");
    source.onmessage = function (message) {
      var event = JSON.parse(message.data);
      var empty = document.getElementById("no-recent");
      if (empty && event.changes.length) { empty.remove(); }
      event.changes.forEach(function (c) {
        var item = document.createElement("li");
        item.className = "fresh";
        var link = document.createElement("a");
        var path = "/ui/t/" + encodeURIComponent(tenant) + "/k/" + encodeURIComponent(c.namespace)
          + "/" + encodeURIComponent(c.key) + (c.env === "base" ? "" : "?env=" + encodeURIComponent(c.env));
        link.href = path;
        link.textContent = c.namespace + "/" + c.key;
        item.appendChild(link);
        if (c.env !== "base") {
          var chip = document.createElement("span");
          chip.className = "chip";
          chip.textContent = c.env;
          item.append(" ", chip);
        }
        var op = document.createElement("span");
        op.className = "op op-" + c.op;
        op.textContent = c.op;
        item.append(" ", op, " v" + c.version + " · r" + event.revision + " ");
        var who = document.createElement("span");
        who.className = "muted";
        who.textContent = (c.author || "") + (c.reason ? " — " + c.reason : "");
        item.appendChild(who);
        list.insertBefore(item, list.firstChild);
        announce("Changed: " + c.namespace + "/" + c.key + " version " + c.version);
      });
    };
  }

  function watchKey(notice) {
    var source = new EventSource(streamUrl(notice));
    var shown = parseInt(notice.getAttribute("data-version"), 10) || 0;
    var ns = notice.getAttribute("data-namespace");
    var key = notice.getAttribute("data-key");
    var env = notice.getAttribute("data-env");
    source.onmessage = function (message) {
      var event = JSON.parse(message.data);
      event.changes.forEach(function (c) {
        if (c.namespace !== ns || c.key !== key || c.env !== env || c.version <= shown) { return; }
        var url = notice.getAttribute("data-changed-url");
        url += (url.indexOf("?") < 0 ? "?" : "&") + "from=" + shown + "&to=" + c.version;
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); })
          .then(function (html) {
            notice.innerHTML = html;
            announce("This key changed elsewhere: now version " + c.version);
          });
      });
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpEditors();
    if (!window.EventSource) { return; }
    var recent = document.getElementById("recent");
    if (recent) { watchRecent(recent); }
    var notice = document.getElementById("changed-notice");
    if (notice) { watchKey(notice); }
  });
})();
