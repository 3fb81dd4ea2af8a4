// sited live reload: injected into HTML pages at serve time, never into built files.
// Follows the event stream of this page's own URL: every event says which page that URL
// serves now (its ETag), so a page reacts only when its own output changed. It then
// fetches the new HTML and morphs the document into it in place, keeping scroll
// position, focus and form state; it reloads instead when the head or the scripts
// changed, or when the page runs scripts of its own (a morph would undo what they did to
// the document without running them again). Stylesheets are swapped when only CSS
// changed; build errors show in an overlay over the last good page.
(() => {
  "use strict";
  if (window.__sitedLiveReload) return;
  const SCRIPT_PATH = "/__sited/livereload.js";
  const EVENTS_PATH = "/__sited/events";
  const OVERLAY_ID = "__sited_overlay";
  // What tests and tools can read: the last build seen, and in-place updates made.
  const status = { generation: null, updates: 0 };
  window.__sitedLiveReload = status;
  const own = document.currentScript;
  // The ETag of the page this document shows: the server wrote it into the script tag;
  // an in-place update moves it on.
  let shown = own ? own.dataset.etag || null : null;
  // The head as served, but for the title, which an update can change in place.
  const headShown = headSignature(document);
  const scriptsShown = hasScripts(document);
  let session = null;
  let generation = null;
  let fetching = false;
  let wanted = null;

  function isOwnScript(node) {
    return node.localName === "script" && node.getAttribute("src") === SCRIPT_PATH;
  }

  // The overlay is no part of the page: a morph leaves it where it is.
  function isOverlay(node) {
    return node.nodeType === Node.ELEMENT_NODE && node.id === OVERLAY_ID;
  }

  function headSignature(doc) {
    if (!doc.head) return "";
    return Array.from(doc.head.children)
      .filter((node) => node.localName !== "title" && !isOwnScript(node))
      .map((node) => node.outerHTML)
      .join("\n");
  }

  // Whether the document has a script other than this one that a browser runs (data
  // blocks such as JSON-LD do not count).
  function hasScripts(doc) {
    return Array.from(doc.querySelectorAll("script")).some((script) => {
      if (isOwnScript(script)) return false;
      const type = (script.getAttribute("type") || "").trim().toLowerCase();
      return type === "" || type === "module" || /(java|ecma)script/.test(type);
    });
  }

  function hideOverlay() {
    const overlay = document.getElementById(OVERLAY_ID);
    if (overlay) overlay.remove();
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

  // Warnings block nothing: a small panel in a corner, folded to its count until opened,
  // in the overlay's place (so the next build's state replaces it).
  function showWarnings(warnings) {
    hideOverlay();
    const overlay = document.createElement("details");
    overlay.id = OVERLAY_ID;
    overlay.dataset.kind = "warnings";
    overlay.style.cssText = "position:fixed;right:.75rem;bottom:.75rem;max-width:min(48rem,90vw);max-height:50vh;" +
      "overflow:auto;z-index:2147483647;padding:.5rem .75rem;background:#1e1e1e;color:#f8f8f2;" +
      "border-left:4px solid #f5a524;border-radius:4px;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;" +
      "box-shadow:0 4px 16px rgba(0,0,0,.35)";
    const title = document.createElement("summary");
    title.style.cssText = "cursor:pointer;font-weight:700;color:#f5c36b";
    title.textContent = warnings.length === 1 ? "sited: 1 warning" : `sited: ${warnings.length} warnings`;
    overlay.appendChild(title);
    for (const warning of warnings) {
      const row = document.createElement("div");
      row.className = "__sited_warning";
      const where = document.createElement("strong");
      where.textContent = warning.location;
      row.appendChild(where);
      row.appendChild(document.createTextNode(": " + warning.message));
      overlay.appendChild(row);
    }
    document.body.appendChild(overlay);
  }

  // `changed`: URL paths of the stylesheets to swap; empty swaps every one of the site's.
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

  // ---- Morphing: the document made equal to a new one, changing only what differs ----

  // Whether `a` can be morphed into `b` rather than replaced by it.
  function sameKind(a, b) {
    if (a.nodeType !== b.nodeType) return false;
    if (a.nodeType !== Node.ELEMENT_NODE) return true;
    return a.localName === b.localName && a.namespaceURI === b.namespaceURI &&
      (a.getAttribute("id") || "") === (b.getAttribute("id") || "");
  }

  function morphAttributes(from, to) {
    for (const attr of Array.from(to.attributes)) {
      if (from.getAttributeNS(attr.namespaceURI, attr.localName) !== attr.value) {
        from.setAttributeNS(attr.namespaceURI, attr.name, attr.value);
      }
    }
    for (const attr of Array.from(from.attributes)) {
      // Whether a <details> is open is the reader's choice, like a form field's value.
      if (attr.localName === "open" && from.localName === "details") continue;
      if (!to.hasAttributeNS(attr.namespaceURI, attr.localName)) {
        from.removeAttributeNS(attr.namespaceURI, attr.localName);
      }
    }
  }

  function morphNode(from, to) {
    if (from.nodeType !== Node.ELEMENT_NODE) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    if (from.isEqualNode(to)) return;
    // Form fields keep what the reader typed or picked: attributes only set their
    // defaults once the field has been changed.
    morphAttributes(from, to);
    if (from.localName === "textarea") {
      if (from.defaultValue !== to.defaultValue) from.defaultValue = to.defaultValue;
      return;
    }
    morphChildren(from, to);
  }

  // The child of `from` to morph into `to`'s child `next`, starting at `cur`: `cur` if
  // it fits; `null` if `next` is new (`cur` fits a later new child), so it is inserted;
  // else the first later child of `from` that fits, the ones before it being gone.
  function pick(cur, next) {
    if (!cur) return null;
    if (sameKind(cur, next)) return cur;
    for (let later = next.nextSibling; later; later = later.nextSibling) {
      if (sameKind(cur, later)) return null;
    }
    for (let later = cur.nextSibling; later; later = later.nextSibling) {
      if (!isOverlay(later) && sameKind(later, next)) return later;
    }
    return null;
  }

  function morphChildren(from, to) {
    let cur = from.firstChild;
    for (let next = to.firstChild; next; next = next.nextSibling) {
      while (cur && isOverlay(cur)) cur = cur.nextSibling;
      const match = pick(cur, next);
      if (match === null) {
        from.insertBefore(document.importNode(next, true), cur);
        continue;
      }
      while (cur !== match) {
        const gone = cur;
        cur = cur.nextSibling;
        if (!isOverlay(gone)) gone.remove();
      }
      cur = match.nextSibling;
      morphNode(match, next);
    }
    while (cur) {
      const gone = cur;
      cur = cur.nextSibling;
      if (!isOverlay(gone)) gone.remove();
    }
  }

  // ---- Following the page's own output ----

  // The page's URL serves `etag` now (`null`: no page; it redirects or is gone).
  function follow(etag) {
    if (etag === shown) return;
    if (etag === null) {
      location.reload();
      return;
    }
    wanted = etag;
    if (!fetching) update();
  }

  async function update() {
    fetching = true;
    try {
      while (wanted !== null && wanted !== shown) {
        wanted = null;
        let response, html;
        try {
          response = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
          html = await response.text();
        } catch (error) {
          // The server went away meanwhile; the next connection says what to do.
          console.warn("sited: cannot fetch the updated page", error);
          return;
        }
        if (!apply(response, html)) return;
      }
    } catch (error) {
      console.warn("sited: updating the page in place failed; reloading", error);
      location.reload();
    } finally {
      fetching = false;
    }
  }

  // Morphs the document into the fetched page; false if it reloaded instead.
  function apply(response, html) {
    const type = response.headers.get("content-type") || "";
    if (response.redirected || !type.startsWith("text/html")) {
      location.reload();
      return false;
    }
    const next = new DOMParser().parseFromString(html, "text/html");
    const tag = next.querySelector(`script[src="${SCRIPT_PATH}"]`);
    const etag = tag ? tag.dataset.etag || null : null;
    if (etag === null || scriptsShown || hasScripts(next) || headSignature(next) !== headShown) {
      location.reload();
      return false;
    }
    if (etag === shown) return true;
    if (document.title !== next.title) document.title = next.title;
    morphAttributes(document.documentElement, next.documentElement);
    morphAttributes(document.body, next.body);
    morphChildren(document.body, next.body);
    shown = etag;
    status.updates += 1;
    return true;
  }

  let events = null;

  function connect() {
    events = new EventSource(EVENTS_PATH + location.pathname);
    events.onmessage = (message) => {
      const state = JSON.parse(message.data);
      const restarted = session !== null && state.session !== session;
      const fresh = session !== null && !restarted && state.generation !== generation;
      session = state.session;
      generation = state.generation;
      status.generation = generation;
      if (state.errors.length) showOverlay(state.errors);
      else if (state.warnings && state.warnings.length) showWarnings(state.warnings);
      else hideOverlay();
      // After a restart, anything may have changed while this page was not listening.
      if (restarted) swapStylesheets([]);
      else if (fresh && state.change === "css") swapStylesheets(state.css);
      if ("page" in state) follow(state.page);
    };
    // EventSource reconnects by itself (the server asks for a short retry), including
    // after the daemon restarts; should a browser give up, start over.
    const stream = events;
    stream.onerror = () => {
      if (stream === events && stream.readyState === EventSource.CLOSED) {
        setTimeout(connect, 1000);
      }
    };
  }

  // A page put in the back/forward cache lets go of its stream, and takes it up again if
  // it is shown again. A kept stream would hold one of the six connections a browser
  // opens to a host: a few pages visited, and the site would stall.
  window.addEventListener("pagehide", () => {
    if (events) events.close();
    events = null;
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !events) connect();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }
})();
