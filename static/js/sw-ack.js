/* Acknowledgements made offline (issue 22): the queue on the device and its sending. Loaded in
 * the service worker (importScripts from templates/sw.js) and in the page (before
 * offline-ack.js, which does the page's part); the same code in both, so an item is sent the
 * same way whoever sends it.
 *
 * IndexedDB "portal-offline-ack":
 *   queue   {client_id, account, bulletin, version, device_time, url, csrf, title}: saved items
 *   notices {account, ok, status, bulletin, message}: answers for the officer's next page
 *   meta    "account": the account of the last page loaded; "csrf:<account>": its newest token
 * Sending (`self.portalAckQueue.flush(account)`): one sender at a time (Web Locks), only the
 * given account's items, each removed on a definite answer (2xx, 404, 409, 422; a refusal's
 * message kept as a notice), kept on a network failure, a redirect to sign in or a 403 (sent
 * after the officer signs in again), 429 or 5xx.
 * In the worker: Background Sync ("portal-ack"), and the hooks templates/sw.js offers
 * (portalBackOnline, portalBeforeSignOut); pages are told with a message "portal-ack-sent".
 */
"use strict";

(function (scope) {
  const DB_NAME = "portal-offline-ack";
  const SYNC_TAG = "portal-ack";
  const LOCK = "portal-ack-queue";
  const KEEP = new Set([0, 401, 403, 408, 429]);  // 0: a redirect to sign in (opaque)
  const GONE = "This acknowledgement could not be recorded. Open the order and acknowledge it again.";

  function request(idbRequest) {
    return new Promise((resolve, reject) => {
      idbRequest.onsuccess = () => resolve(idbRequest.result);
      idbRequest.onerror = () => reject(idbRequest.error);
    });
  }

  let opened = null;
  function open() {
    if (!opened) {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore("queue", {keyPath: "client_id"}).createIndex("account", "account");
        db.createObjectStore("notices", {autoIncrement: true}).createIndex("account", "account");
        db.createObjectStore("meta");
      };
      opened = request(req).then((db) => {
        db.onversionchange = () => { db.close(); opened = null; };
        db.onclose = () => { opened = null; };
        return db;
      }, (error) => { opened = null; throw error; });
    }
    return opened;
  }

  async function store(name, mode) {
    const db = await open();
    return db.transaction(name, mode).objectStore(name);
  }

  async function byAccount(name, account) {
    const found = await request((await store(name, "readonly")).index("account").getAll(account));
    return found;
  }

  const queue = {
    async add(item) {
      await request((await store("queue", "readwrite")).put(item));
      return item;
    },
    async items(account) {
      return byAccount("queue", account);
    },
    async remove(clientId) {
      await request((await store("queue", "readwrite")).delete(clientId));
    },
    /* A page of `account` was loaded: it is the one signed in, and `csrf` its newest token. */
    async rememberAccount(account, csrf) {
      const meta = await store("meta", "readwrite");
      await request(meta.put(account, "account"));
      if (csrf) await request(meta.put(csrf, "csrf:" + account));
    },
    async lastAccount() {
      return request((await store("meta", "readonly")).get("account"));
    },
    async token(account) {
      return request((await store("meta", "readonly")).get("csrf:" + account));
    },
    async addNotice(notice) {
      await request((await store("notices", "readwrite")).add(notice));
    },
    /* The notices for `account`, removed from the device as they are handed over. */
    async takeNotices(account) {
      const notices = await store("notices", "readwrite");
      const keys = await request(notices.index("account").getAllKeys(account));
      const found = await request(notices.index("account").getAll(account));
      await Promise.all(keys.map((key) => request(notices.delete(key))));
      return found;
    },
    /* Send the queue of `account`; `csrf` (the page's token) before the one kept with each
     * item. Resolves with what was answered: [{bulletin, ok, status, message}]. */
    async flush(account, csrf) {
      if (!account) return [];
      const run = () => sendAll(account, csrf);
      if (scope.navigator && scope.navigator.locks) return scope.navigator.locks.request(LOCK, run);
      return run();
    },
    syncTag: SYNC_TAG,
  };

  async function send(item, csrf) {
    return fetch(item.url, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({
        version: item.version, client_id: item.client_id, device_time: item.device_time,
        account: item.account,
      }),
    });
  }

  async function sendAll(account, csrf) {
    const answered = [];
    const newest = csrf || await queue.token(account);
    for (const item of await queue.items(account)) {
      let response;
      try {
        response = await send(item, newest || item.csrf);
      } catch (error) {
        break;  // no network: everything stays for the next time
      }
      if (KEEP.has(response.status) || response.status >= 500) break;
      let answer = {};
      try {
        answer = await response.json();
      } catch (error) { /* not JSON: the general message below */ }
      const notice = {
        account, bulletin: item.bulletin, ok: response.ok, status: response.status,
        message: answer.message || GONE, title: item.title || "",
      };
      await queue.addNotice(notice);
      await queue.remove(item.client_id);
      answered.push(notice);
    }
    return answered;
  }

  scope.portalAckQueue = queue;

  const inWorker = typeof ServiceWorkerGlobalScope !== "undefined" &&
    scope instanceof ServiceWorkerGlobalScope;
  if (!inWorker) return;

  /* The worker's (the account of the device's copy), else the one of the last page loaded; the
   * server refuses (403, kept) what is not the signed-in person's anyway. */
  async function currentAccount() {
    const kept = scope.portalAccountKey ? await scope.portalAccountKey() : null;
    return kept || queue.lastAccount();
  }

  async function flushFromWorker() {
    const account = await currentAccount();
    const answered = await queue.flush(account);
    if (answered.length) {
      const pages = await scope.clients.matchAll({type: "window"});
      pages.forEach((page) => page.postMessage({type: "portal-ack-sent", answered}));
    }
    return answered;
  }

  async function syncOrRetry() {
    await flushFromWorker();
    const account = await currentAccount();
    if (account && (await queue.items(account)).length) {
      throw new Error("kept on the device: the browser tries the sync again later");
    }
  }

  scope.addEventListener("sync", (event) => {
    if (event.tag === SYNC_TAG) event.waitUntil(syncOrRetry());
  });
  if (Array.isArray(scope.portalBackOnline)) scope.portalBackOnline.push(flushFromWorker);
  if (Array.isArray(scope.portalBeforeSignOut)) scope.portalBeforeSignOut.push(flushFromWorker);
})(self);
