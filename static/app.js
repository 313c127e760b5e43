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
document.addEventListener("change", function (e) {
  if (!e.target.matches || !e.target.matches("[data-logo-file]")) return;
  var preview = e.target.parentNode.querySelector("[data-logo-preview]");
  var file = e.target.files[0];
  if (!preview) return;
  if (!file) {
    preview.hidden = true;
    return;
  }
  var reader = new FileReader();
  reader.onload = function () {
    preview.src = reader.result;
    preview.hidden = false;
    // The sign-in page preview shows it as the main logo.
    var type = document.getElementById("logo-type");
    var brand = document.querySelector("[data-logo-preview-brand]");
    var mark = document.querySelector("[data-logo-preview-mark]");
    if (brand && (!type || type.value === "main")) {
      brand.src = reader.result;
      brand.hidden = false;
      if (mark) mark.hidden = true;
    }
  };
  reader.readAsDataURL(file);
});
document.addEventListener("htmx:xhr:progress", function (e) {
  var bar = e.target.querySelector && e.target.querySelector("[data-upload-progress]");
  if (bar && e.detail.lengthComputable) {
    bar.hidden = false;
    bar.value = Math.round((e.detail.loaded / e.detail.total) * 100);
  }
});
// Forms marked data-swap-invalid show the 422 answer (the form with its
// errors) instead of ignoring it, as htmx does with error statuses.
document.addEventListener("htmx:beforeSwap", function (e) {
  if (e.detail.xhr.status === 422 && e.detail.elt.closest("[data-swap-invalid]")) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
