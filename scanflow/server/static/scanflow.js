// Shared dashboard helpers: the CSRF header on every mutation, actions, sign-in, theme.
"use strict";

function csrfToken() {
  var m = document.cookie.match(/(?:^|;\s*)scanflow_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function flash(text, isError) {
  var box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;  // text, never markup
  box.className = isError ? "error" : "ok";
}

// POST to the JSON API as the signed-in browser; resolves to the parsed answer.
async function act(url, body) {
  var response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify(body || {}),
  });
  var data = await response.json().catch(function () { return { error: response.statusText }; });
  if (!response.ok) {
    flash((data && data.error) || ("error " + response.status), true);
    throw new Error(data.error || response.status);
  }
  flash(data.message || "done", false);
  return data;
}

document.addEventListener("htmx:configRequest", function (event) {
  event.detail.headers["x-csrf-token"] = csrfToken();
});

document.addEventListener("DOMContentLoaded", function () {
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("scanflow-theme", next);
      document.dispatchEvent(new Event("scanflow:theme"));  // charts redraw in its colours
    });
  }
  var form = document.getElementById("login-form");
  if (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var response = await fetch("/api/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: document.getElementById("token").value }),
      });
      if (response.ok) {
        window.location.assign("/");
      } else {
        var data = await response.json().catch(function () { return {}; });
        document.getElementById("login-error").textContent = data.error || "sign-in failed";
      }
    });
  }
  document.querySelectorAll("button.agent-action").forEach(function (button) {
    button.addEventListener("click", async function () {
      try {
        await act(button.dataset.url, {});
        window.location.reload();
      } catch (e) { /* shown in the flash line */ }
    });
  });
  document.querySelectorAll("button.move-alias").forEach(function (button) {
    button.addEventListener("click", async function () {
      var alias = document.getElementById("alias-name").value.trim();
      try {
        await act(button.dataset.url + encodeURIComponent(alias), { version: button.dataset.version });
        window.location.reload();
      } catch (e) { /* shown in the flash line */ }
    });
  });
});
