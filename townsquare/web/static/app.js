// Progressive enhancement for Townsquare's pages: everything works without this file; with it,
// actions happen in place, new posts arrive live, and the shield's proof of work is solved.
(function () {
  "use strict";

  var csrfInput = document.querySelector('input[name="csrf_token"]');
  var csrf = csrfInput ? csrfInput.value : "";
  var live = document.getElementById("live-region");

  function announce(text) { if (live) { live.textContent = text; } }

  // --- The shield: solve a proof-of-work challenge in a worker, then earn a pass. ---
  function solve(challenge) {
    return new Promise(function (resolve, reject) {
      var worker = new Worker("/shield/pow-worker.js");
      worker.onmessage = function (event) {
        worker.terminate();
        if (event.data.error) { reject(new Error(event.data.error)); return; }
        fetch("/api/v1/shield/pass", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json"},
          body: JSON.stringify({challenge: challenge.challenge, nonce: event.data.nonce})
        }).then(function (response) { response.ok ? resolve() : reject(new Error("No pass")); }, reject);
      };
      worker.postMessage({challenge: challenge.challenge, difficulty: challenge.difficulty});
    });
  }

  function readError(response) {
    return response.clone().json().then(function (body) { return body; }, function () { return {}; });
  }

  // fetch(), and when the shield asks for proof of work, solve it and try once more.
  function shieldFetch(url, options, retried) {
    options = options || {};
    options.credentials = "same-origin";
    return fetch(url, options).then(function (response) {
      if (response.status !== 429 || retried) { return response; }
      return readError(response).then(function (body) {
        if (!body.challenge) { return response; }
        return solve(body.challenge).then(function () { return shieldFetch(url, options, true); });
      });
    });
  }

  function describeFailure(response) {
    return readError(response).then(function (body) {
      if (response.status === 429) { return body.error && body.error !== "Too many requests" ? body.error : "You are doing that too often. Wait a little and try again."; }
      if (response.status === 413) { return body.error || "That file is too big."; }
      if (response.status === 503) { return "The server is busy. Try again in a few seconds."; }
      return body.error || ("Something went wrong (" + response.status + ").");
    });
  }

  function showError(form, message) {
    var box = form.querySelector("[data-error]");
    if (box) { box.textContent = message; box.hidden = false; box.focus && box.setAttribute("tabindex", "-1"); }
    else { window.alert(message); }
  }

  function clearError(form) {
    var box = form.querySelector("[data-error]");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  function fromHTML(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }

  // --- Forms of people not logged in (log in, sign up): pass the shield, show refusals. ---
  document.querySelectorAll("form[data-anonymous-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearError(form);
      var button = form.querySelector('button[type="submit"]');
      if (button) { button.disabled = true; }
      shieldFetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                                headers: {"Accept": "text/html"}})
        .then(function (response) {
          var type = response.headers.get("content-type") || "";
          if (response.redirected) { window.location.assign(response.url); return; }
          if (type.indexOf("text/html") === -1) {
            return describeFailure(response).then(function (message) { showError(form, message); });
          }
          return response.text().then(function (html) {
            document.open(); document.write(html); document.close();
          });
        })
        .catch(function () { showError(form, "The server could not be reached. Try again."); })
        .finally(function () { if (button) { button.disabled = false; } });
    });
  });

  // --- Character count. ---
  document.querySelectorAll("textarea[data-max]").forEach(function (area) {
    var max = parseInt(area.getAttribute("data-max"), 10);
    var counter = document.getElementById(area.getAttribute("aria-describedby"));
    function update() {
      var left = max - Array.from(area.value).length;
      if (counter) {
        counter.textContent = left >= 0 ? left + " characters left" : (-left) + " characters too many";
        counter.classList.toggle("over", left < 0);
      }
    }
    area.addEventListener("input", update);
    update();
  });

  // --- Image previews next to their alt text. ---
  document.querySelectorAll("[data-attachment]").forEach(function (box) {
    var input = box.querySelector('input[type="file"]');
    var preview = box.querySelector("img.preview");
    var alt = box.querySelector('input[name="media_description[]"]');
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { preview.hidden = true; preview.removeAttribute("src"); return; }
      preview.src = URL.createObjectURL(file);
      preview.alt = "Preview of " + file.name;
      preview.hidden = false;
      if (alt && !alt.value) { alt.focus(); }
    });
  });

  // --- Actions on posts, in place. ---
  function replacePost(form, html) {
    var article = form.closest("article.status");
    if (!article) { window.location.reload(); return; }
    if (!html) { article.remove(); announce("Post deleted"); return; }
    var fresh = fromHTML(html).firstElementChild;
    var wasReblogWrapper = article.querySelector(".reblogged-by");
    if (wasReblogWrapper) {
      // Keep the "reposted by" line of the timeline entry; only the post inside changes.
      fresh.insertBefore(wasReblogWrapper, fresh.firstChild);
      fresh.setAttribute("data-id", article.getAttribute("data-id"));
    }
    article.replaceWith(fresh);
    bindActions(fresh);
    var name = form.getAttribute("action").split("/").pop();
    var button = fresh.querySelector('form[action$="/' + inverse(name) + '"] button');
    if (button) { button.focus(); }
  }

  function inverse(name) {
    if (name.indexOf("un") === 0) { return name.slice(2); }
    return "un" + name;
  }

  function bindActions(root) {
    root.querySelectorAll("form[data-action]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var question = form.getAttribute("data-confirm");
        if (question && !window.confirm(question)) { return; }
        shieldFetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                                  headers: {"Accept": "application/json", "X-CSRF-Token": csrf}})
          .then(function (response) {
            if (!response.ok) { return describeFailure(response).then(function (m) { window.alert(m); }); }
            return response.json().then(function (body) { replacePost(form, body.html); });
          });
      });
    });
    root.querySelectorAll("form[data-confirm]:not([data-action])").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }
  bindActions(document);

  // --- Compose: post without leaving the page. ---
  var feed = document.getElementById("feed");
  var replies = document.getElementById("replies");
  var seen = {};
  document.querySelectorAll("article.status").forEach(function (a) { seen[a.getAttribute("data-id")] = true; });

  function insertPost(html, where, atEnd) {
    var fresh = fromHTML(html).firstElementChild;
    if (!fresh || seen[fresh.getAttribute("data-id")]) { return null; }
    seen[fresh.getAttribute("data-id")] = true;
    fresh.classList.add("fresh");
    var empty = where.querySelector(".empty");
    if (empty) { empty.remove(); }
    if (atEnd) { where.appendChild(fresh); } else { where.insertBefore(fresh, where.firstChild); }
    bindActions(fresh);
    return fresh;
  }

  document.querySelectorAll("form[data-compose]").forEach(function (form) {
    if (form.getAttribute("action") !== "/statuses") { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearError(form);
      var key = form.querySelector('input[name="idempotency_key"]');
      if (key && !key.value) { key.value = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()); }
      var button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      shieldFetch(form.action, {method: "POST", body: new FormData(form),
                                headers: {"Accept": "application/json", "X-CSRF-Token": csrf}})
        .then(function (response) {
          if (!response.ok) { return describeFailure(response).then(function (m) { showError(form, m); }); }
          return response.json().then(function (body) {
            var target = replies || feed;
            if (target) { insertPost(body.html, target, Boolean(replies)); }
            form.reset();
            if (key) { key.value = ""; }
            form.querySelectorAll("img.preview").forEach(function (img) { img.hidden = true; img.removeAttribute("src"); });
            form.querySelectorAll("textarea[data-max]").forEach(function (a) { a.dispatchEvent(new Event("input")); });
            announce("Posted");
          });
        })
        .catch(function () { showError(form, "The server could not be reached. Your post was not sent."); })
        .finally(function () { button.disabled = false; });
    });
  });

  // --- Load more, and infinite scroll. ---
  function bindLoadMore(container) {
    var link = container.querySelector("a[data-load-more]");
    if (!link) { return; }
    function load(event) {
      if (event) { event.preventDefault(); }
      if (link.dataset.loading) { return; }
      link.dataset.loading = "1";
      if (feed) { feed.setAttribute("aria-busy", "true"); }
      var url = new URL(link.href, window.location.href);
      url.searchParams.set("fragment", "1");
      var params = new URLSearchParams(window.location.search);
      params.forEach(function (value, name) { if (!url.searchParams.has(name)) { url.searchParams.set(name, value); } });
      shieldFetch(url.toString(), {headers: {"Accept": "text/html"}}).then(function (response) {
        return response.text();
      }).then(function (html) {
        var content = fromHTML(html);
        var parent = link.parentNode;
        content.querySelectorAll("article.status").forEach(function (a) { seen[a.getAttribute("data-id")] = true; });
        parent.replaceChild(content, link);
        bindActions(parent);
        bindLoadMore(parent);
        if (feed) { feed.setAttribute("aria-busy", "false"); }
      });
    }
    link.addEventListener("click", load);
    if ("IntersectionObserver" in window) {
      var observer = new IntersectionObserver(function (entries) {
        if (entries[0].isIntersecting) { observer.disconnect(); load(); }
      }, {rootMargin: "400px"});
      observer.observe(link);
    }
  }
  if (feed) { bindLoadMore(feed); }

  // --- Live updates through the streaming API (the session cookie opens it). ---
  if (document.body.getAttribute("data-signed-in") && "EventSource" in window) {
    var stream = document.body.getAttribute("data-stream") || "user/notification";
    var conversation = document.querySelector("[data-conversation]");
    if (conversation) { stream = "direct"; }
    var source = new EventSource("/api/v1/streaming/" + stream);
    var badge = document.getElementById("unread-badge");
    var newPostsBar = document.querySelector("[data-new-posts]");
    var newPostsButton = newPostsBar ? newPostsBar.querySelector("button") : null;
    var pending = [];
    if (newPostsButton) {
      newPostsButton.addEventListener("click", function () {
        var newest = null;
        // Oldest first, each on top of the one before: the newest ends up first.
        pending.forEach(function (html) { newest = insertPost(html, feed, false) || newest; });
        pending = [];
        newPostsBar.hidden = true;
        if (newest) { newest.setAttribute("tabindex", "-1"); newest.focus(); }
      });
    }
    source.addEventListener("open", function () { document.body.setAttribute("data-live", "open"); });
    source.addEventListener("error", function () { document.body.setAttribute("data-live", "retrying"); });
    source.addEventListener("update", function (event) {
      if (!feed) { return; }
      var status = JSON.parse(event.data);
      if (seen[status.id]) { return; }
      shieldFetch("/web/statuses/" + status.id, {headers: {"Accept": "text/html"}}).then(function (response) {
        if (!response.ok) { return; }
        return response.text().then(function (html) {
          if (newPostsBar && window.scrollY > 300) {
            // Someone reading further down is not pushed around: new posts wait for a click.
            pending.push(html);
            newPostsButton.textContent = "Show " + pending.length + " new post" + (pending.length > 1 ? "s" : "");
            newPostsBar.hidden = false;
            return;
          }
          if (insertPost(html, feed, false)) { announce("New post from @" + status.account.acct); }
        });
      });
    });
    source.addEventListener("delete", function (event) {
      var gone = document.querySelector('article.status[data-id="' + event.data + '"]');
      if (gone) { gone.remove(); }
    });
    source.addEventListener("notification", function () {
      if (badge) {
        var count = parseInt(badge.getAttribute("data-count") || badge.textContent.replace(/\D/g, "") || "0", 10) + 1;
        badge.setAttribute("data-count", String(count));
        badge.textContent = String(count);
        badge.hidden = false;
      }
      announce("New notification");
      var list = document.querySelector("[data-notifications]");
      if (list) { refresh(list, "/notifications?fragment=1"); }
    });
    source.addEventListener("conversation", function () {
      if (conversation) { refresh(conversation, window.location.pathname + "?fragment=1"); }
    });
  }

  function refresh(container, url) {
    shieldFetch(url, {headers: {"Accept": "text/html"}}).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) { return; }
      container.innerHTML = html;
      bindActions(container);
    });
  }

  // --- Search as you type. ---
  var searchBox = document.querySelector("input[data-search]");
  if (searchBox) {
    var results = document.getElementById("search-results");
    var timer = null;
    searchBox.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = searchBox.value.trim();
        var url = "/search?fragment=1&q=" + encodeURIComponent(q);
        shieldFetch(url, {headers: {"Accept": "text/html"}}).then(function (response) {
          return response.ok ? response.text() : null;
        }).then(function (html) {
          if (html === null) { return; }
          results.innerHTML = html;
          bindActions(results);
          history.replaceState(null, "", q ? "/search?q=" + encodeURIComponent(q) : "/search");
        });
      }, 250);
    });
  }
})();
