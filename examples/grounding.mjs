// Grounding: parse bbox_2d / point_2d JSON from an answer, map 0-1000 coordinates to the
// image's pixels and draw them. Run: node examples/grounding.mjs [OUT.png]
import { drawGrounding, parseGroundingToPixels, savePng } from "../dist/src/index.js";
import { loadImageFile } from "../dist/src/processing/image.js";

const image = await loadImageFile("assets/sample.png");
// What a real Qwen3-VL answers to "Locate every shape, report bbox coordinates in JSON":
const answer = '```json\n[{"bbox_2d": [120, 150, 480, 620], "label": "shape"}, {"point_2d": [750, 300], "label": "dot"}]\n```';
const items = parseGroundingToPixels(answer, image.width, image.height);
console.log(JSON.stringify(items.map((i) => (i.type === "box" ? { box: i.bbox, label: i.label } : { point: i.point, label: i.label }))));
const out = process.argv[2] ?? "grounding.png";
await savePng(out, drawGrounding(image, items));
console.log(`saved ${out}`);
