// The local inbox (local/inbox_page.py): optional auto-refresh, remembered per tab.
"use strict";
(function () {
  const box = document.getElementById("auto-refresh");
  if (!box) return;
  box.checked = sessionStorage.getItem("inbox-refresh") === "1";
  let timer = null;
  const playing = () =>
    [...document.querySelectorAll("audio, video")].some((m) => !m.paused);
  const arm = () => {
    clearInterval(timer);
    if (box.checked) {
      timer = setInterval(() => { if (!playing()) location.reload(); }, 3000);
    }
  };
  box.addEventListener("change", () => {
    sessionStorage.setItem("inbox-refresh", box.checked ? "1" : "0");
    arm();
  });
  arm();
})();
