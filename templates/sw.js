/* The portal's service worker (portal.offline serves it at /sw.js, scope "/"). Hand-written, no
 * Workbox: see docs/decisions.md (2026-12-04).
 *
 * - Static files (hashed names): cache first. Pages: network first; without a network, the copy
 *   this device keeps for the signed-in person (bulletins.offline lists it), with the banner
 *   "Offline - as of 09:10", or the page "You are offline and this page was not saved".
 * - The copy lives in the cache "portal-copy-<account key>"; the key is an HMAC of the user id.
 *   It is wiped at sign-in and sign-out (any POST under /accounts/), when the bundle names another
 *   account or answers "not signed in", and once the session's absolute limit has passed.
 *
 * API for the scripts loaded below (static/js/sw-ack.js by 22b, static/js/sw-push.js by 22c):
 *   self.portalAccountKey() -> Promise<string|null>: the account whose copy the device keeps
 *       (the key the bundle gave; null when there is none, e.g. after sign-out).
 *   self.portalBeforeSignOut: an array; push async functions to run (5 s at most in all) before
 *       the sign-out request leaves, e.g. to send the queued acknowledgements while the session
 *       still exists. The sign-out response clears caches and storage (Clear-Site-Data).
 *   self.portalBackOnline: an array; push async functions to run when a page reports the network
 *       is back, before the copy is refreshed and the page loaded again from the network.
 *   self.portalRefreshCopy({force}) -> Promise: bring the copy up to date now.
 */
"use strict";

const CONFIG = {{ config|safe }};
const STATIC_CACHE = "portal-static-" + CONFIG.version;
const COPY_PREFIX = "portal-copy-";
const META_CACHE = "portal-offline-meta";
const META_KEY = "/__portal-offline-meta";  // a key in META_CACHE, never asked of the server
const COPIED_AT = "X-Portal-Copied-At";
const REFRESH_MS = 60 * 1000;
const HOOK_MS = 5000;
const COPY_HEADERS = {[CONFIG.copyHeader]: "true", "Portal-Auto-Refresh": "true"};
const BANNER_SLOT = '<div id="offline-banner" class="offline-banner" hidden></div>';
const RESTRICTED = /<!--offline-restricted-->[\s\S]*?<!--\/offline-restricted-->/g;
const RESTRICTED_CARD =
  '<li class="bulletin-card is-restricted-offline"><p class="bulletin-title">' +
  "Restricted - read it when you are back online</p></li>";

self.portalBeforeSignOut = [];
self.portalBackOnline = [];
let stale = false;  // something was posted: the next refresh asks the server whatever the time

async function readMeta() {
  const cache = await caches.open(META_CACHE);
  const response = await cache.match(META_KEY);
  return response ? response.json() : null;
}

async function writeMeta(meta) {
  const cache = await caches.open(META_CACHE);
  await cache.put(META_KEY, new Response(JSON.stringify(meta), {
    headers: {"Content-Type": "application/json"},
  }));
}

async function wipeCopies() {
  const names = await caches.keys();
  await Promise.all(names
    .filter((name) => name.startsWith(COPY_PREFIX) || name === META_CACHE)
    .map((name) => caches.delete(name)));
}

self.portalAccountKey = async function () {
  const meta = await readMeta();
  return meta && Date.now() < meta.expiresAt ? meta.account : null;
};

async function runHooks(hooks) {
  const all = Promise.allSettled(hooks.map((hook) => Promise.resolve().then(hook)));
  await Promise.race([all, new Promise((resolve) => setTimeout(resolve, HOOK_MS))]);
}

function stripRestricted(html) {
  return html.replace(RESTRICTED, RESTRICTED_CARD);
}

async function keepCopy(cache, url, bundle) {
  const response = await fetch(url, {
    headers: COPY_HEADERS, credentials: "same-origin", redirect: "manual", cache: "no-store",
  });
  if (response.status !== 200) throw new Error("not kept: " + url + " " + response.status);
  const headers = new Headers(response.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  headers.set(COPIED_AT, new Date().toISOString());
  const isPage = (headers.get("Content-Type") || "").startsWith("text/html");
  let body = isPage ? await response.text() : await response.blob();
  if (isPage && !bundle.restricted_kept) body = stripRestricted(body);
  await cache.put(url, new Response(body, {status: 200, headers}));
}

async function fetchBundle() {
  try {
    return await fetch(CONFIG.bundleUrl, {
      headers: COPY_HEADERS, credentials: "same-origin", redirect: "manual", cache: "no-store",
    });
  } catch (error) {
    return null;  // no network: the copy stays as it is
  }
}

/* "offline" when the server could not be reached, else "done" (or "skipped": asked too soon). */
async function refresh(force) {
  const meta = await readMeta();
  if (!force && !stale && meta && Date.now() - meta.checkedAt < REFRESH_MS) return "skipped";
  const response = await fetchBundle();
  if (!response) return "offline";
  if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
    await wipeCopies();  // signed out, or the session is over
    return "done";
  }
  if (!response.ok) return "done";
  const bundle = await response.json();
  if (meta && meta.account !== bundle.account) await wipeCopies();
  stale = false;
  const cache = await caches.open(COPY_PREFIX + bundle.account);
  const wanted = new Set([...bundle.pages, ...bundle.attachments]
    .map((path) => new URL(path, self.location.origin).href));
  for (const request of await cache.keys()) {
    if (!wanted.has(request.url)) await cache.delete(request);  // ended, lifted, restricted
  }
  const samePages = meta && meta.account === bundle.account && meta.etag === bundle.etag;
  const kept = {
    account: bundle.account,
    expiresAt: bundle.expires_at,
    zone: bundle.zone,
    restricted: bundle.restricted,
  };
  // The copy's owner is written before anything goes in, so whatever is in it can be shown.
  await writeMeta({...kept, etag: "", checkedAt: (samePages && meta.checkedAt) || 0});
  let complete = true;
  for (const path of bundle.pages) {
    if (samePages && !force && await cache.match(path)) continue;
    await keepCopy(cache, path, bundle).catch(() => { complete = false; });
  }
  for (const path of bundle.attachments) {
    if (await cache.match(path)) continue;  // an attachment never changes
    await keepCopy(cache, path, bundle).catch(() => { complete = false; });
  }
  await writeMeta({
    ...kept,
    etag: complete ? bundle.etag : "",
    checkedAt: complete ? Date.now() : (samePages && meta.checkedAt) || 0,
  });
  return "done";
}

let refreshing = null;
self.portalRefreshCopy = function (options) {
  const force = Boolean(options && options.force);
  if (!refreshing) refreshing = refresh(force).finally(() => { refreshing = null; });
  else if (force) refreshing = refreshing.then(() => refresh(true));
  return refreshing;
};

function asOf(meta, copy) {
  const at = new Date(Math.max(meta.checkedAt, Date.parse(copy.headers.get(COPIED_AT)) || 0));
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: meta.zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(at);
}

async function withBanner(copy, meta) {
  if (!(copy.headers.get("Content-Type") || "").startsWith("text/html")) return copy;
  const banner = '<div id="offline-banner" class="offline-banner" role="status" ' +
    'data-offline-copy="true"><p><strong>Offline - as of ' + asOf(meta, copy) +
    "</strong></p></div>";
  const html = (await copy.text()).replace(BANNER_SLOT, banner);
  return new Response(html, {status: 200, headers: copy.headers});
}

async function offlinePage() {
  const cache = await caches.open(STATIC_CACHE);
  const page = await cache.match(CONFIG.offlinePage);
  if (page) return page;
  return new Response("You are offline and this page was not saved.", {
    status: 503, headers: {"Content-Type": "text/plain; charset=utf-8"},
  });
}

async function fromCopy(request) {
  const meta = await readMeta();
  if (meta && Date.now() >= meta.expiresAt) {
    await wipeCopies();  // the session's absolute limit: the copy ends with it
  } else if (meta) {
    const url = new URL(request.url);
    url.hash = "";
    const cache = await caches.open(COPY_PREFIX + meta.account);
    const copy = await cache.match(url.href);
    if (copy) return withBanner(copy, meta);
  }
  return offlinePage();
}

async function networkFirst(event) {
  try {
    const response = await fetch(event.request);
    event.waitUntil(self.portalRefreshCopy().catch(() => {}));
    return response;
  } catch (error) {
    return fromCopy(event.request);
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(STATIC_CACHE);
  const kept = await cache.match(request);
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function signOut(event) {
  await runHooks(self.portalBeforeSignOut);
  await wipeCopies();
  return fetch(event.request);
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(STATIC_CACHE);
    await cache.addAll(CONFIG.precache);
    const page = await fetch(CONFIG.offlinePage, {credentials: "omit", cache: "no-store"});
    if (page.ok) await cache.put(CONFIG.offlinePage, page);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith("portal-static-") && name !== STATIC_CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    stale = true;
    if (url.pathname === CONFIG.logoutPath && self.portalBeforeSignOut.length) {
      event.respondWith(signOut(event));
    } else if (url.pathname.startsWith(CONFIG.accountsPrefix)) {
      // Signing in or out: the copy belonged to whoever was signed in before.
      event.waitUntil(wipeCopies());
    }
    return;
  }
  if (url.pathname.startsWith(CONFIG.staticPrefix)) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate") {
    event.respondWith(networkFirst(event));
  }
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  const port = event.ports && event.ports[0];
  let work = null;
  if (data.type === "page-loaded") {
    work = self.portalRefreshCopy();
  } else if (data.type === "back-online") {
    work = runHooks(self.portalBackOnline).then(() => self.portalRefreshCopy({force: true}));
  }
  if (!work) return;
  event.waitUntil(work.catch(() => "done").then((outcome) => {
    if (port) port.postMessage({done: true, online: outcome !== "offline"});
  }));
});

if (CONFIG.imports.length) importScripts(...CONFIG.imports);
