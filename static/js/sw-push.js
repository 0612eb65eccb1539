/* Web Push in the service worker (loaded by templates/sw.js with importScripts).
 *
 * push: show the message {title, body, url, tag} the portal sent (bulletins.services.push) as a
 * notification; a newer one about the same bulletin replaces the older (the tag).
 * notificationclick: open the bulletin - in a portal window already open if there is one - and
 * only ever a page of the portal's own origin.
 */
"use strict";

const PUSH_ICON = "/static/favicon.svg";
const PUSH_FALLBACK_TITLE = "Officer safety bulletins";

function portalUrl(url) {
  try {
    const target = new URL(url || "/", self.location.origin);
    return target.origin === self.location.origin ? target.href : new URL("/", self.location.origin).href;
  } catch (error) {
    return new URL("/", self.location.origin).href;
  }
}

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {};
  }
  const options = {
    body: String(message.body || ""),
    data: {url: portalUrl(message.url)},
    icon: PUSH_ICON,
    renotify: Boolean(message.tag),
  };
  if (message.tag) options.tag = String(message.tag);
  else delete options.renotify;
  event.waitUntil(
    self.registration.showNotification(String(message.title || PUSH_FALLBACK_TITLE), options),
  );
});

/* Open `url` (same origin only): in a portal window already open if there is one. */
self.portalOpenFromNotification = async (url) => {
  const target = portalUrl(url);
  const windows = await self.clients.matchAll({type: "window", includeUncontrolled: true});
  for (const client of windows) {
    if (new URL(client.url).origin !== self.location.origin) continue;
    try {
      const shown = client.url === target ? client : await client.navigate(target);
      if (shown) return await shown.focus().catch(() => shown);  // focus needs the tap
    } catch (error) {
      // Not controlled by this worker: it cannot be navigated; open a window instead.
    }
  }
  return self.clients.openWindow(target);
};

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.portalOpenFromNotification(event.notification.data && event.notification.data.url));
});
