/* The farmer's offline queue. A form[data-queue] is written to the phone (IndexedDB, keyed by its event_id)
   before it goes on the wire and deleted only once the server has answered it for good, so a dead 3G link
   loses nothing; a resend carries the same event_id, the server's Idempotency-Key, so it never makes a second
   event. Without this script (or without IndexedDB) every form still posts natively.

   Online submits go through fetch too, not natively: navigator.onLine says "online" on a phone with bars
   but no data, and a native post that dies there leaves the farmer on the browser's error page with the
   form gone. Through fetch the same failure just leaves the record queued. The server's answer (My lots, or
   the form again with its message) is then shown in place of the page, which saves a second download.

   Every word shown comes from the page (data- attributes of #queue, translated by the templates). */
(function () {
  "use strict";
  var LOGIN = "/farmer/login";
  var LOTS = "/farmer/lots";
  var TIMEOUT_MS = 30000;
  var SLOWEST_BYTES_PER_MS = 10; // 10 kB/s, a poor 3G upload: a big photo gets the time it needs
  var RETRY_MS = 30000;
  var PHOTO_MAX_BYTES = 1024 * 1024;
  var PHOTO_MAX_SIDE = 1600;
  var LOT_FIELD = /(^|_)lot(_code)?$/; // lot, lot_code, in1_lot...: what the list names an item by
  var busy = new Set();
  var flushing = false;
  var swapped = false;
  var said = null;

  function box() { return document.getElementById("queue"); }
  if (!box() || !window.indexedDB || !window.fetch || !window.Promise) return;

  function text(key) { return (box() && box().dataset[key]) || ""; }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }

  /* IndexedDB: one store of queued forms, {id, action, multipart, fields, kind, lot, when, lang, state}. */
  var opened = null;
  function db() {
    opened = opened || new Promise(function (ok, fail) {
      var req = indexedDB.open("trace-queue", 1);
      req.onupgradeneeded = function () { req.result.createObjectStore("forms", { keyPath: "id" }); };
      req.onsuccess = function () { ok(req.result); };
      req.onerror = function () { opened = null; fail(req.error); };
    });
    return opened;
  }
  function store(mode, work) {
    return db().then(function (d) {
      return new Promise(function (ok, fail) {
        var t = d.transaction("forms", mode);
        var req = work(t.objectStore("forms"));
        t.oncomplete = function () { ok(req.result); };
        t.onerror = t.onabort = function () { fail(t.error); };
      });
    });
  }
  function keep(item) { return store("readwrite", function (s) { return s.put(item); }); }
  function forget(id) { return store("readwrite", function (s) { return s.delete(id); }); }
  function queued() { return store("readonly", function (s) { return s.getAll(); }); }

  /* A large camera photo is redrawn at most PHOTO_MAX_SIDE px wide as a JPEG: a tenth of the bytes to send
     and to keep. Small photos, and anything the browser cannot redraw, are kept as they are. */
  function lighter(file) {
    if (!(file instanceof Blob) || file.size <= PHOTO_MAX_BYTES || !/^image\//.test(file.type) ||
        !window.createImageBitmap) return Promise.resolve(file);
    return createImageBitmap(file).then(function (img) {
      var scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(img.width, img.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(img.width * scale);
      canvas.height = Math.round(img.height * scale);
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      return new Promise(function (ok) { canvas.toBlob(ok, "image/jpeg", 0.85); });
    }).then(function (blob) {
      if (!blob || blob.size >= file.size) return file;
      return new File([blob], (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" });
    }, function () { return file; });
  }

  function capture(form, submitter) {
    var entries = Array.from(new FormData(form, submitter).entries());
    return Promise.all(entries.map(function (e) {
      return lighter(e[1]).then(function (v) { return [e[0], v]; });
    })).then(function (fields) {
      var action = new URL(form.getAttribute("action") || location.href, location.href).pathname;
      var named = Array.from(form.elements).filter(function (e) { return e.name && e.value && e.type !== "file"; });
      var lot = named.filter(function (e) { return LOT_FIELD.test(e.name); })[0] ||
        named.filter(function (e) { return e.name === "plot"; })[0];
      return {
        id: form.elements.event_id.value, action: action, fields: fields, lot: lot ? lot.value : "",
        state: "waiting",
        multipart: form.enctype === "multipart/form-data", kind: action.split("/").pop(),
        when: (form.elements.event_time && form.elements.event_time.value) || "",
        lang: document.documentElement.lang, saved: Date.now()
      };
    });
  }

  /* The session's CSRF token may have changed since the form was queued (signed in again): take the
     current page's, from a signed-in form (never the sign-in form's own token). */
  function freshCsrf() {
    var input = document.querySelector('form[data-queue] input[name=csrf], form[action$="/logout"] input[name=csrf]');
    return input ? input.value : null;
  }

  function body(item) {
    var csrf = freshCsrf();
    var data = item.multipart ? new FormData() : new URLSearchParams();
    item.fields.forEach(function (f) { data.append(f[0], f[0] === "csrf" && csrf ? csrf : f[1]); });
    return data;
  }

  /* Resolves to the Response, or null when the network failed or timed out (nothing known to be stored). */
  function send(item) {
    var control = new AbortController();
    var size = item.fields.reduce(function (n, f) { return n + (f[1].size || String(f[1]).length); }, 0);
    var timer = setTimeout(function () { control.abort(); }, TIMEOUT_MS + size / SLOWEST_BYTES_PER_MS);
    return fetch(item.action, {
      method: "POST", body: body(item), credentials: "same-origin", signal: control.signal
    }).catch(function () { return null; }).finally(function () { clearTimeout(timer); });
  }

  /* done: recorded (the 303 to My lots, followed); refused: a 4xx that no resend can change (409 other
     values, 422 invalid, 403 rights); signin: the session expired; offline / later (5xx, 408, 429): retry. */
  function outcome(res) {
    if (!res) return "offline";
    if (res.redirected && new URL(res.url).pathname === LOGIN) return "signin";
    if (res.ok) return "done";
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return "refused";
    return "later";
  }

  function reason(status) {
    return text(status === 409 ? "refused409" : status === 403 ? "refused403" : "refused");
  }

  function moment(value) {
    var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d)/.exec(value || "");
    if (!m) return "";
    var day = new Intl.DateTimeFormat(document.documentElement.lang === "th" ? "th-TH" : "en-GB", {
      day: "numeric", month: "short", year: "numeric", timeZone: "UTC"
    }).format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])));
    return fill(text("moment"), { day: day, time: m[4] });
  }

  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content) node.textContent = content;
    return node;
  }

  function say(key, values) {
    said = { key: key, values: values || {} };
    draw();
  }

  function note() {
    var p = el("p", "queue-note");
    p.setAttribute("role", "status");
    if (!said) return p;
    p.textContent = fill(text(said.key), said.values) + " ";
    if (said.key === "signin" && location.pathname !== LOGIN) {
      var a = el("a", "", text("signinLink"));
      a.href = LOGIN + (document.documentElement.lang === "en" ? "?lang=en" : "");
      p.appendChild(a);
    }
    return p;
  }

  function row(item) {
    var li = el("li", item.state === "refused" ? "refused" : "");
    var kind = text("kind" + item.kind.charAt(0).toUpperCase() + item.kind.slice(1)) || item.kind;
    li.appendChild(el("span", "", [kind, item.lot, moment(item.when)].filter(Boolean).join(" · ")));
    if (item.state === "refused") {
      li.appendChild(el("div", "", reason(item.status)));
      var ok = el("button", "secondary", text("okLabel"));
      ok.type = "button";
      ok.dataset.dismiss = item.id;
      li.appendChild(ok);
    }
    return li;
  }

  /* The waiting list and the last message, at the top of every farmer page. */
  function draw() {
    return queued().then(function (items) {
      var region = box();
      if (!region) return;
      items.sort(function (a, b) { return a.saved - b.saved; });
      var waiting = items.filter(function (i) { return i.state === "waiting"; }).length;
      var title = el("h2", "", fill(text("title"), { count: waiting }));
      var list = el("ul");
      items.forEach(function (i) { list.appendChild(row(i)); });
      region.replaceChildren(note(), title, list);
      title.hidden = !waiting;
      list.hidden = !items.length;
      region.hidden = !items.length && !said;
    }).catch(function () {});
  }

  function signInFirst() {
    return queued().then(function (items) {
      if (items.some(function (i) { return i.state === "waiting"; })) say("signin");
    }).catch(function () {});
  }

  /* Send every waiting form once, oldest first; stop at the first one that cannot go now. */
  function flush() {
    if (flushing || !navigator.onLine) return Promise.resolve();
    if (!freshCsrf()) return signInFirst(); // signed out: every send would only be turned away
    flushing = true;
    var sent = 0;
    return queued().then(function (items) {
      items = items.filter(function (i) { return i.state === "waiting" && !busy.has(i.id); });
      items.sort(function (a, b) { return a.saved - b.saved; });
      if (items.length) say("sending");
      return items.reduce(function (chain, item) {
        return chain.then(function (stop) {
          if (stop) return stop;
          busy.add(item.id);
          return send(item).then(function (res) {
            var how = outcome(res);
            if (how === "done") { sent += 1; return forget(item.id); }
            if (how === "refused") {
              item.state = "refused";
              item.status = res.status;
              return keep(item);
            }
            return how;
          }).finally(function () { busy.delete(item.id); });
        });
      }, Promise.resolve(null));
    }).then(function (stop) {
      flushing = false;
      if (stop) return say(stop);
      if (sent && location.pathname === LOTS && !document.querySelector("form[data-queue]")) {
        return location.reload();
      }
      if (sent) return say("sent", { count: sent });
      if (said && said.key === "sending") said = null;
      return draw();
    }, function () { flushing = false; });
  }

  /* The server's own page (My lots after a 303, or the form again with its message) in place of this one. */
  function show(res) {
    var type = res.headers.get("content-type") || "";
    if (!/text\/html/.test(type)) return say("refused", {});
    return res.text().then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.title = doc.title;
      document.body.replaceWith(document.adoptNode(doc.body));
      if (res.redirected) {
        history.pushState(null, "", res.url);
        swapped = true;
      }
      said = null;
      window.scrollTo(0, 0);
      return draw();
    }, function () { location.assign(res.url); });
  }

  function submitted(form, item) {
    return keep(item).then(function () {
      return navigator.onLine ? send(item) : null;
    }, function () {
      form.submit(); // no storage on this phone: the plain post
      return undefined;
    }).then(function (res) {
      if (res === undefined) return;
      var how = outcome(res);
      if (how === "done" || how === "refused") return forget(item.id).then(function () { return show(res); });
      say(how);
      var region = box();
      if (region) region.scrollIntoView({ block: "start" });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-queue]") || !form.elements.event_id) return;
    event.preventDefault();
    var id = form.elements.event_id.value;
    if (busy.has(id)) return; // a double tap: the first one is on its way
    busy.add(id);
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    buttons.forEach(function (b) { b.disabled = true; });
    capture(form, event.submitter).then(function (item) { return submitted(form, item); })
      .catch(function () { form.submit(); })
      .finally(function () {
        busy.delete(id);
        buttons.forEach(function (b) { b.disabled = false; });
      });
  });

  document.addEventListener("click", function (event) {
    var id = event.target.dataset && event.target.dataset.dismiss;
    if (id) forget(id).then(draw);
  });

  window.addEventListener("online", flush);
  window.addEventListener("popstate", function () { if (swapped) location.reload(); });
  setInterval(flush, RETRY_MS);
  draw().then(flush);
})();
