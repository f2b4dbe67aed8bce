// Photos the citizen picks: checked here as the server checks them (type by the first bytes,
// at most 5 MB, at most 4), and made smaller before upload so a slow connection copes.

export const MAX_PHOTOS = 4;
export const MAX_BYTES = 5 * 1024 * 1024;
const LONG_SIDE = 1600; // plenty to see a pothole or a broken lamp
const SHRINK_ABOVE = 600 * 1024;

async function sniff(file) {
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  const starts = (...bytes) => bytes.every((byte, i) => head[i] === byte);
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  const text = String.fromCharCode(...head);
  if (text.startsWith("RIFF") && text.slice(8, 12) === "WEBP") return "image/webp";
  return null;
}

// Re-encoding also drops the photo's EXIF data, GPS position included.
async function shrink(file) {
  if (typeof createImageBitmap !== "function") return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return file;
  }
  const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.82));
  return blob && blob.size < file.size ? blob : file;
}

// Returns { accepted: [{blob, name, preview}], refused: [reason…] } for the picked files.
export async function preparePhotos(files, alreadyChosen) {
  const accepted = [];
  const refused = [];
  for (const file of files) {
    if (alreadyChosen + accepted.length >= MAX_PHOTOS) {
      refused.push(`最多 ${MAX_PHOTOS} 张照片，“${file.name}”未添加`);
      continue;
    }
    const type = await sniff(file);
    if (!type) {
      refused.push(`“${file.name}”不是 JPEG、PNG 或 WebP 照片`);
      continue;
    }
    const blob = file.size > SHRINK_ABOVE ? await shrink(file) : file;
    if (blob.size > MAX_BYTES) {
      refused.push(`“${file.name}”超过 5 MB`);
      continue;
    }
    const kind = blob === file ? type : "image/jpeg";
    const extension = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" }[kind];
    accepted.push({ blob, name: `photo.${extension}`, preview: URL.createObjectURL(blob) });
  }
  return { accepted, refused };
}
