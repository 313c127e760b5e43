// Sends the CSRF token with every htmx request, from the page's body
// attribute (no inline script is allowed by the Content-Security-Policy).
document.addEventListener("htmx:configRequest", function (e) {
  var token = document.body.getAttribute("data-csrf");
  if (token) {
    e.detail.headers["X-CSRF-Token"] = token;
  }
});

// Buttons marked data-copy copy the text of the element they name.
document.addEventListener("click", function (e) {
  var btn = e.target.closest("[data-copy]");
  if (!btn) return;
  var src = document.getElementById(btn.getAttribute("data-copy"));
  if (src && navigator.clipboard) {
    navigator.clipboard.writeText(src.textContent.trim());
    btn.textContent = "Copied";
  }
});

// The logo upload form: a file dropped on the drop zone is chosen as if
// picked, a preview of the chosen image is shown (as a data: URL, which the
// Content-Security-Policy allows), and the upload's progress fills the
// form's <progress>.
document.addEventListener("dragover", function (e) {
  var zone = e.target.closest && e.target.closest("[data-dropzone]");
  if (!zone) return;
  e.preventDefault();
  zone.classList.add("over");
});
document.addEventListener("dragleave", function (e) {
  var zone = e.target.closest && e.target.closest("[data-dropzone]");
  if (zone) zone.classList.remove("over");
});
document.addEventListener("drop", function (e) {
  var zone = e.target.closest && e.target.closest("[data-dropzone]");
  if (!zone) return;
  e.preventDefault();
  zone.classList.remove("over");
  var input = zone.querySelector("[data-logo-file]");
  if (input && e.dataTransfer.files.length) {
    input.files = e.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
// The sign-in preview shows what saving gives: the chosen image as the
// main logo while it may be uploaded, and the saved logo (or the initial)
// again once it is refused, here or by the server.
function showSavedLogo() {
  var brand = document.querySelector("[data-logo-preview-brand]");
  var mark = document.querySelector("[data-logo-preview-mark]");
  if (!brand) return;
  var saved = brand.getAttribute("data-saved");
  if (saved) {
    brand.src = saved;
    brand.hidden = false;
    if (mark) mark.hidden = true;
  } else {
    brand.removeAttribute("src");
    brand.hidden = true;
    if (mark) mark.hidden = false;
  }
}

// refuseChosenLogo takes the chosen file out of the previews and says why
// under the drop zone; an empty message only clears them.
function refuseChosenLogo(input, preview, message) {
  var zone = input.closest("[data-dropzone]");
  var slot = zone && zone.parentNode && zone.parentNode.querySelector("[data-logo-choose-error]");
  preview.hidden = true;
  preview.removeAttribute("src");
  showSavedLogo();
  if (slot) slot.remove();
  if (!message || !zone) return;
  slot = document.createElement("p");
  slot.className = "field-error";
  slot.setAttribute("role", "alert");
  slot.setAttribute("data-logo-choose-error", "");
  slot.setAttribute("data-testid", "error-file-chosen");
  slot.textContent = message;
  zone.insertAdjacentElement("afterend", slot);
}

document.addEventListener("change", function (e) {
  if (!e.target.matches || !e.target.matches("[data-logo-file]")) return;
  var input = e.target;
  var preview = input.parentNode.querySelector("[data-logo-preview]");
  var file = input.files[0];
  if (!preview) return;
  // A new choice clears the refusal of the last one.
  var old = input.form && input.form.querySelector("[data-testid=error-file]");
  if (old) old.remove();
  refuseChosenLogo(input, preview, "");
  if (!file) return;
  var max = parseInt(input.getAttribute("data-max-bytes"), 10);
  if (max && file.size > max) {
    refuseChosenLogo(input, preview, "This file is larger than " + input.getAttribute("data-max-size") +
      ", the most a logo may be: choose a smaller one.");
    return;
  }
  var reader = new FileReader();
  // A file read after another was chosen is not the choice any more.
  var current = function () { return input.files[0] === file; };
  reader.onload = function () {
    if (!current()) return;
    // Shown only once the browser can draw it: a file that is no image
    // would leave a broken picture where the logo goes.
    var probe = new Image();
    probe.onload = function () {
      if (!current()) return;
      preview.src = reader.result;
      preview.hidden = false;
      var type = document.getElementById("logo-type");
      var brand = document.querySelector("[data-logo-preview-brand]");
      var mark = document.querySelector("[data-logo-preview-mark]");
      if (brand && (!type || type.value === "main")) {
        brand.src = reader.result;
        brand.hidden = false;
        if (mark) mark.hidden = true;
      }
    };
    probe.onerror = function () {
      if (!current()) return;
      refuseChosenLogo(input, preview, "This file is not an image the portal can show: choose a PNG, JPEG, WebP or SVG file.");
    };
    probe.src = reader.result;
  };
  reader.readAsDataURL(file);
});

// After an upload or a removal the panel is drawn again, saying which main
// logo is saved: the sign-in preview shows it, as the file input is empty
// again. An upload refused without a panel (too large for the server, a
// limit, an outage) leaves the saved logo in the preview too.
document.addEventListener("htmx:afterSwap", function (e) {
  // An outerHTML swap's target is the panel it replaced: the new one is
  // read from the page.
  if (!e.detail.target || e.detail.target.id !== "logo-panel") return;
  var panel = document.getElementById("logo-panel");
  var brand = document.querySelector("[data-logo-preview-brand]");
  if (!panel || !brand) return;
  var saved = panel.getAttribute("data-saved-main");
  if (saved) {
    brand.setAttribute("data-saved", saved);
  } else {
    brand.removeAttribute("data-saved");
  }
  showSavedLogo();
});
document.addEventListener("htmx:afterRequest", function (e) {
  var el = requester(e);
  if (e.detail.failed && el && el.matches && el.matches("[data-testid=logo-form]")) showSavedLogo();
});

document.addEventListener("htmx:xhr:progress", function (e) {
  var bar = e.target.querySelector && e.target.querySelector("[data-upload-progress]");
  if (bar && e.detail.lengthComputable) {
    bar.hidden = false;
    bar.value = Math.round((e.detail.loaded / e.detail.total) * 100);
  }
});
// htmx swaps no error answer by default, so without this a refused upload
// or form would show nothing. In htmx 2 e.detail.elt is the swap target;
// the element that sent the request is requestConfig.elt.
function requester(e) {
  return (e.detail.requestConfig && e.detail.requestConfig.elt) || e.detail.elt;
}

// errorSlot is where a form's error message goes: a [data-form-error]
// element inside it, made at its top when it has none, so the message
// shows where the person is looking rather than at the top of the page.
function errorSlot(el) {
  var form = el && el.closest && el.closest("form");
  if (!form) return null;
  var slot = form.querySelector("[data-form-error]");
  if (!slot) {
    slot = document.createElement("div");
    slot.setAttribute("data-form-error", "");
    slot.setAttribute("data-testid", "form-error-slot");
    slot.setAttribute("role", "alert");
    form.insertBefore(slot, form.firstChild);
  }
  return slot;
}

function showError(el, html, text) {
  var slot = errorSlot(el) || document.getElementById("errors");
  if (!slot) return;
  if (html !== null) {
    slot.innerHTML = html;
  } else {
    slot.innerHTML = "";
    var p = document.createElement("p");
    p.className = "form-error";
    p.textContent = text;
    slot.appendChild(p);
  }
  if (slot.scrollIntoView) slot.scrollIntoView({ block: "nearest" });
}

document.addEventListener("htmx:beforeSwap", function (e) {
  var status = e.detail.xhr.status;
  if (status < 400) return;
  var el = requester(e);
  // Forms marked data-swap-invalid show the 422 answer: the form again,
  // with its errors next to their fields.
  if (status === 422 && el && el.closest && el.closest("[data-swap-invalid]")) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
    return;
  }
  // Any other refusal: the server's message (its error partial, which it
  // sends retargeted) goes next to the form that was sent, or at the top
  // of the page for a request from outside a form.
  e.detail.shouldSwap = false;
  var ct = e.detail.xhr.getResponseHeader("Content-Type") || "";
  var isPartial = e.detail.xhr.getResponseHeader("HX-Retarget") && ct.indexOf("text/html") === 0;
  showError(el, isPartial ? e.detail.serverResponse : null,
    status >= 500 ? "Something went wrong on our side. Please try again in a minute." : "That could not be done.");
});

// A request that never reached the server says so too.
document.addEventListener("htmx:sendError", function (e) {
  showError(requester(e), null, "Could not reach the server. Check your connection and try again.");
});

// A finished or failed upload leaves no full progress bar behind.
document.addEventListener("htmx:afterRequest", function (e) {
  var el = requester(e);
  var bar = el && el.querySelector && el.querySelector("[data-upload-progress]");
  if (bar && e.detail.failed) {
    bar.hidden = true;
    bar.value = 0;
  }
  // A form sent again without an error clears its old message.
  if (el && el.closest && !e.detail.failed) {
    var form = el.closest("form");
    var slot = form && form.querySelector("[data-form-error]");
    if (slot) slot.innerHTML = "";
  }
});

// A color picker beside a hex field: picking writes the field (and, as
// typing does, sends the live preview); typing a whole hex color moves the
// picker. The field is what the form sends; the picker has no name.
document.addEventListener("input", function (e) {
  var t = e.target;
  if (!t.matches) return;
  if (t.matches("[data-color-picker]")) {
    var field = document.getElementById(t.getAttribute("data-color-picker"));
    if (field) {
      field.value = t.value;
      field.dispatchEvent(new Event("input", { bubbles: true }));
    }
    return;
  }
  if (!t.id) return;
  var picker = document.querySelector('[data-color-picker="' + t.id + '"]');
  var m = picker && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(t.value.trim());
  if (!m) return;
  var hex = m[1].toLowerCase();
  if (hex.length === 3) hex = hex[0] + hex[0] + hex[1] + hex[1] + hex[2] + hex[2];
  picker.value = "#" + hex;
});

// Forms marked data-confirm (removing a member, revoking a key or an
// invitation, suspending a tenant) ask before they are sent: one stray
// click must not undo someone's access. It runs in the capture phase,
// before htmx or the browser sends anything.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    e.preventDefault();
    e.stopImmediatePropagation();
  }
}, true);

// The menu collapses behind its button on narrow screens. The button is
// shown only here, so that without scripts the menu is simply there;
// Escape closes the menu and gives focus back to the button.
(function () {
  var button = document.querySelector("[data-menu-toggle]");
  var menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!menu) return;
  function setOpen(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("collapsed", !open);
  }
  button.hidden = false;
  setOpen(false);
  button.addEventListener("click", function () {
    setOpen(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (e) {
    var inside = menu.contains(document.activeElement) || document.activeElement === button;
    if (e.key === "Escape" && inside && button.getAttribute("aria-expanded") === "true" && button.offsetParent !== null) {
      setOpen(false);
      button.focus();
    }
  });
})();

// A field's error is about the value that was sent: once the person
// changes the field, it no longer applies, and goes. (A live preview that
// checks as they type says what is wrong with the new value.)
document.addEventListener("input", function (e) {
  var field = e.target;
  if (!field.name || !field.form) return;
  var error = field.form.querySelector("#error-" + CSS.escape(field.name) + ".field-error");
  if (!error) return;
  error.remove();
  field.removeAttribute("aria-invalid");
  var described = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (id) {
    return id && id !== error.id;
  });
  if (described.length) {
    field.setAttribute("aria-describedby", described.join(" "));
  } else {
    field.removeAttribute("aria-describedby");
  }
});

// A form marked data-result="ID" shows the result of testing what it
// holds (a connection test) in element ID: once a field changes, that
// result was for other values, and goes.
document.addEventListener("input", function (e) {
  var form = e.target.form;
  var id = form && form.getAttribute("data-result");
  var result = id && document.getElementById(id);
  if (result) result.innerHTML = "";
});
