// sited live reload: injected into HTML pages at serve time, never into built files.
// Listens to the site's event stream; reloads after a rebuild, swaps stylesheets when only
// CSS changed, and shows build errors in an overlay over the last good page.
(() => {
  "use strict";
  if (window.__sitedLiveReload) return;
  window.__sitedLiveReload = true;
  const OVERLAY_ID = "__sited_overlay";
  // The ETag of this page as served, written into the script tag by the server.
  const served = document.currentScript ? document.currentScript.dataset : {};
  let session = null;
  let generation = null;

  function hideOverlay() {
    const overlay = document.getElementById(OVERLAY_ID);
    if (overlay) overlay.remove();
    return overlay !== null;
  }

  function showOverlay(errors) {
    hideOverlay();
    const overlay = document.createElement("div");
    overlay.id = OVERLAY_ID;
    overlay.setAttribute("role", "alert");
    overlay.style.cssText = "position:fixed;inset:auto 0 0 0;max-height:60vh;overflow:auto;z-index:2147483647;" +
      "margin:0;padding:1rem 1.25rem;background:#1e1e1e;color:#f8f8f2;border-top:4px solid #e5484d;" +
      "font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;box-shadow:0 -8px 24px rgba(0,0,0,.35)";
    const title = document.createElement("div");
    title.style.cssText = "font-weight:700;color:#ff8a8a;margin-bottom:.5rem";
    title.textContent = errors.length === 1 ? "sited: the build failed" : `sited: the build failed (${errors.length} errors)`;
    overlay.appendChild(title);
    for (const error of errors) {
      const row = document.createElement("div");
      row.className = "__sited_error";
      const where = document.createElement("strong");
      where.textContent = error.location;
      row.appendChild(where);
      row.appendChild(document.createTextNode(": " + error.message));
      overlay.appendChild(row);
    }
    const close = document.createElement("button");
    close.textContent = "×";
    close.title = "Hide until the next build";
    close.style.cssText = "position:absolute;top:.25rem;right:.5rem;background:none;border:0;color:inherit;font-size:1.5rem;cursor:pointer";
    close.onclick = () => overlay.remove();
    overlay.appendChild(close);
    document.body.appendChild(overlay);
  }

  function swapStylesheets(changed) {
    const links = document.querySelectorAll('link[rel~="stylesheet"]');
    for (const link of links) {
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin) continue;
      if (changed.length && !changed.includes(url.pathname)) continue;
      url.searchParams.set("__sited", String(Date.now()));
      const fresh = link.cloneNode();
      fresh.href = url.toString();
      fresh.onload = () => link.remove();
      link.after(fresh);
    }
  }

  function connect() {
    const events = new EventSource("/__sited/events");
    events.onmessage = (message) => {
      const state = JSON.parse(message.data);
      if (session !== null && state.session !== session) {
        // The site was restarted (daemon restart, `sitectl restart`): start afresh.
        location.reload();
        return;
      }
      const first = session === null;
      const previous = generation;
      session = state.session;
      generation = state.generation;
      if (state.errors.length) {
        showOverlay(state.errors);
        return;
      }
      const hadOverlay = hideOverlay();
      if (first) {
        // A rebuild may have finished between this page's load and this connection,
        // its event missed: ask whether the page is still what the site serves.
        if (served.etag) {
          fetch(location.href, { method: "HEAD", cache: "no-store" })
            .then((response) => {
              const etag = response.headers.get("etag") || "";
              if (!etag.includes(served.etag)) location.reload();
            })
            .catch(() => {});
        }
        return;
      }
      if (previous === state.generation) return;
      if (state.change === "css" && !hadOverlay) {
        swapStylesheets(state.css);
        return;
      }
      location.reload();
    };
    // EventSource reconnects by itself (the server asks for a short retry), including
    // after the daemon restarts; should a browser give up, start over.
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) {
        setTimeout(connect, 1000);
      }
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }
})();
