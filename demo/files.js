// File helpers for the demo: decoding images, telling models from embeddings, drag and drop,
// paste, downloads and the export formats.
import { maskToCocoRLE } from '../web/masks.js';
import { cutoutImageData, maskStats } from './overlay.js';

// Any image the browser decodes -> ImageData at its original size (EXIF orientation applied).
export async function decodeImage(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close?.();
  return ctx.getImageData(0, 0, c.width, c.height);
}

// The safetensors header's __metadata__ (to tell embeddings from models and check sizes).
export async function safetensorsMeta(blob) {
  if (blob.size < 8) return null;
  const head = new DataView(await blob.slice(0, 8).arrayBuffer());
  const len = Number(head.getBigUint64(0, true));
  if (len <= 0 || len > 100 << 20) return null;
  try {
    return JSON.parse(await blob.slice(8, 8 + len).text()).__metadata__ ?? {};
  } catch {
    return null;
  }
}

// Sorts files into {image, model, embedding} (the last of each kind wins).
export async function classifyFiles(files) {
  const out = { image: null, model: null, embedding: null };
  for (const f of files) {
    const name = f.name.toLowerCase();
    if (f.type.startsWith('image/')) out.image = f;
    else if (name.endsWith('.pth') || name.endsWith('.pt')) out.model = f;
    else if (name.endsWith('.safetensors')) {
      if ((await safetensorsMeta(f))?.format === 'sam-embedding') out.embedding = f;
      else out.model = f;
    }
  }
  return out;
}

// Drag and drop anywhere on the page, and pasting an image.
export function acceptDropsAndPaste(onFiles, dropHint) {
  let depth = 0;
  window.addEventListener('dragenter', (ev) => {
    if (![...(ev.dataTransfer?.types ?? [])].includes('Files')) return;
    depth++;
    dropHint.hidden = false;
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dropHint.hidden = true;
  });
  window.addEventListener('dragover', (ev) => ev.preventDefault());
  window.addEventListener('drop', (ev) => {
    ev.preventDefault();
    depth = 0;
    dropHint.hidden = true;
    const files = [...(ev.dataTransfer?.files ?? [])];
    if (files.length) onFiles(files);
  });
  window.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    ev.preventDefault();
    onFiles([new File([files[0]], files[0].name || 'pasted.png', { type: files[0].type })]);
  });
}

export function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// The image, transparent outside the mask, as a PNG blob at the image size.
export function cutoutPNG(imageData, mask) {
  const c = new OffscreenCanvas(imageData.width, imageData.height);
  c.getContext('2d').putImageData(cutoutImageData(imageData, mask), 0, 0);
  return c.convertToBlob({ type: 'image/png' });
}

// One annotation with the fields of the official automatic mask generator's COCO-RLE output,
// plus the prompts that made it.
export function cocoAnnotation(m, prompts, imageName, modelName) {
  const { area, bbox } = maskStats(m.data, m.width, m.height);
  const points = prompts.filter((p) => p.type === 'point');
  const ann = {
    image: imageName ?? null,
    segmentation: maskToCocoRLE(m.data, m.width, m.height),
    area,
    bbox,
    predicted_iou: m.score,
    stability_score: m.stability,
    point_coords: points.map((p) => [p.x, p.y]),
    point_labels: points.map((p) => p.label),
    box: prompts.find((p) => p.type === 'box')?.box ?? null,
    model: modelName,
  };
  return new Blob([JSON.stringify(ann)], { type: 'application/json' });
}
