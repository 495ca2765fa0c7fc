// The replay slider's number follows the thumb; htmx fetches the case as it was.
document.addEventListener("input", function (event) {
  var slider = event.target;
  if (!(slider instanceof HTMLInputElement) || slider.id !== "version") {
    return;
  }
  var out = document.getElementById("version-out");
  if (out) {
    out.textContent = slider.value;
  }
  slider.setAttribute("aria-valuetext", "version " + slider.value);
});
