// Listens to <sam-segmenter>'s events (demo/element.html).
const seg = document.getElementById('seg');
const log = document.getElementById('log');
seg.addEventListener('progress', (e) => {
  const { stage, done, total } = e.detail;
  log.textContent = `${stage}: ${total ? Math.round((100 * done) / total) + '%' : '…'}`;
});
seg.addEventListener('ready', (e) => {
  log.textContent = `Ready: ${e.detail.width}×${e.detail.height} — click on an object.`;
  document.body.dataset.state = 'ready';
});
seg.addEventListener('mask', (e) => {
  const { mask, width, height, score, points } = e.detail;
  let area = 0;
  for (const v of mask) area += v;
  log.textContent = `Mask: ${area} of ${width * height} pixels, score ${score.toFixed(3)}, ${points.length} point(s).`;
  document.body.dataset.masks = String(Number(document.body.dataset.masks || 0) + 1);
});
seg.addEventListener('error', (e) => {
  log.textContent = `Error: ${e.detail.error.message}`;
  document.body.dataset.state = 'error';
});
