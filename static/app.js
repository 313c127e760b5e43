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
