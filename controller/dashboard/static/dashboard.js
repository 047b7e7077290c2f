// The dashboard's behaviour: buttons post with the session's CSRF token and show the outcome,
// and one Server-Sent Events stream keeps the page live (see controller/dashboard/live.py).
"use strict";
(function () {
  const csrfMeta = document.querySelector('meta[name="csrf"]');
  if (!csrfMeta) return; // the sign-in page
  const csrf = csrfMeta.content;
  const outcome = document.getElementById("outcome");
  const liveState = document.getElementById("live-state");

  function say(text, ok) {
    outcome.textContent = text;
    outcome.className = ok ? "ok" : "error";
  }

  // -- figures shown in place -------------------------------------------------------------------
  function format(el, value) {
    if (value === null || value === undefined) return el.dataset.format === "fault" ? "" : "–";
    switch (el.dataset.format) {
      case "kw": return (value / 1000).toFixed(2) + " kW";
      case "kwh": return ((value - Number(el.dataset.offset || 0)) / 1000).toFixed(3) + " kWh";
      case "fault": return value === "NoError" ? "" : String(value);
      default: return String(value);
    }
  }

  function apply(values) {
    for (const el of document.querySelectorAll("[data-live]")) {
      if (Object.prototype.hasOwnProperty.call(values, el.dataset.live)) {
        el.textContent = format(el, values[el.dataset.live]);
      }
    }
  }

  // -- the page's live regions fetched again --------------------------------------------------
  let refreshing = false, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (response.redirected) { location.reload(); return; } // signed out: to the sign-in page
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-region]")) {
        const replacement = fresh.getElementById(region.id);
        if (replacement) region.replaceWith(document.adoptNode(replacement));
      }
    } catch (e) {
      /* the controller is restarting: the stream's reconnection brings the next refresh */
    } finally {
      refreshing = false;
      if (again) { again = false; setTimeout(refresh, 50); }
    }
  }

  // -- "tap a card to add it" ---------------------------------------------------------------
  let tapReader = null;
  const tapButton = document.getElementById("tap-wait");
  if (tapButton) {
    tapButton.addEventListener("click", () => {
      tapReader = document.getElementById("tap-reader").value;
      document.getElementById("tap-state").textContent = "Waiting for a card on " + tapReader + "…";
    });
  }
  function tapped(tap) {
    if (tapReader === null || tap.reader !== tapReader) return;
    tapReader = null;
    const field = document.getElementById("tag-id");
    field.value = tap.idTag;
    field.focus();
    document.getElementById("tap-state").textContent = "Card " + tap.idTag + " read on " + tap.reader;
  }

  // -- the stream -----------------------------------------------------------------------------
  let lostTouch = false;
  function connect() {
    const source = new EventSource("/dashboard/events");
    source.addEventListener("open", () => {
      liveState.textContent = "live";
      if (lostTouch) { lostTouch = false; refresh(); } // what changed while we were away
    });
    source.addEventListener("error", () => {
      liveState.textContent = "reconnecting…";
      lostTouch = true;
      if (source.readyState === EventSource.CLOSED) { // refused (signed out): try again, then sign in
        setTimeout(() => fetch(location.href, {credentials: "same-origin"}).then(r => {
          if (r.redirected) location.reload(); else connect();
        }, () => setTimeout(connect, 1000)), 1000);
      }
    });
    source.addEventListener("set", (e) => apply(JSON.parse(e.data)));
    source.addEventListener("refresh", () => refresh());
    source.addEventListener("tap", (e) => tapped(JSON.parse(e.data)));
  }
  connect();

  // -- buttons ------------------------------------------------------------------------------
  function showConfiguration(table, result) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const entry of (result.configurationKey || [])) {
      const row = body.insertRow();
      const key = row.insertCell(), value = row.insertCell(), change = row.insertCell();
      key.textContent = entry.key; key.dataset.label = "Key";
      value.textContent = entry.value === undefined ? "" : entry.value; value.dataset.label = "Value";
      change.dataset.label = "Change";
      if (entry.readonly) { change.textContent = "read-only"; continue; }
      const form = document.createElement("form");
      form.method = "post"; form.action = table.dataset.change; form.dataset.action = "";
      const name = document.createElement("input");
      name.type = "hidden"; name.name = "key"; name.value = entry.key;
      const input = document.createElement("input");
      input.name = "value"; input.value = entry.value === undefined ? "" : entry.value;
      input.setAttribute("aria-label", "New value of " + entry.key);
      const button = document.createElement("button");
      button.type = "submit"; button.textContent = "Change";
      button.setAttribute("aria-label", "Change " + entry.key);
      form.append(name, input, button);
      change.append(form);
    }
    for (const unknown of (result.unknownKey || [])) {
      const row = body.insertRow();
      row.insertCell().textContent = unknown; row.insertCell().textContent = "unknown key"; row.insertCell();
    }
    table.hidden = false;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-action]")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    say("Sending…", true);
    let response, body = {};
    try {
      response = await fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                                           headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}});
      body = await response.json();
    } catch (e) {
      say("No answer from the controller: " + e.message, false);
      return;
    }
    say(body.message || (response.ok ? "Done" : "Failed (HTTP " + response.status + ")"), response.ok);
    if (!response.ok) return;
    if (form.dataset.show) showConfiguration(document.getElementById(form.dataset.show), body.result || {});
    if (form.dataset.after === "refresh") { form.reset(); refresh(); }
  });
})();
