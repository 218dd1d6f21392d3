// The map, tapped: a region's figures in the panel beside it (a second tap, or the panel's
// link, opens the area a level down), and the map as a PNG for slides. Without this script
// the map still shows each region's figures on hover and opens an area on a click.
(function () {
  "use strict";
  var map = document.querySelector("svg.choropleth");
  var panel = document.getElementById("region-details");
  if (!map || !panel) { return; }
  function show(id, value) {
    var element = document.getElementById(id);
    element.textContent = value === undefined || value === null ? "–" : value;
  }
  map.addEventListener("click", function (event) {
    var region = event.target.closest("path.region");
    if (!region) { return; }
    var link = region.parentNode.tagName.toLowerCase() === "a" ? region.parentNode.getAttribute("href") : null;
    if (region.classList.contains("selected") && link) { return; } // the second tap opens it
    event.preventDefault();
    var selected = map.querySelectorAll("path.region.selected");
    for (var i = 0; i < selected.length; i += 1) { selected[i].classList.remove("selected"); }
    region.classList.add("selected");
    var data = region.dataset;
    show("details-name", data.name + " (" + data.code + ")");
    show("details-reports", data.reports);
    show("details-people", data.people);
    show("details-previous", data.previousReports);
    show("details-change", data.changeReports);
    show("details-expected", data.expected);
    document.getElementById("details-hotspot").hidden = data.hotspot !== "yes";
    var open = document.getElementById("details-open");
    open.hidden = !link;
    if (link) { open.setAttribute("href", link); }
    panel.hidden = false;
  });

  // PNG: the same SVG the download link gives, drawn on a canvas at twice its size.
  var button = document.getElementById("export-png");
  if (!button) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var image = new Image();
    image.onload = function () {
      var canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth * 2;
      canvas.height = image.naturalHeight * 2;
      var context = canvas.getContext("2d");
      context.fillStyle = "#ffffff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (png) {
        var save = document.createElement("a");
        save.href = URL.createObjectURL(png);
        save.download = button.getAttribute("data-name");
        document.body.appendChild(save);
        save.click();
        save.remove();
      }, "image/png");
    };
    image.src = button.getAttribute("data-svg");
  });
})();
