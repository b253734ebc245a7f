// transformers.web.js imports {Tensor} from "onnxruntime-common"; it must be the Tensor class of the
// very ORT module the import map gives it, or `instanceof` checks between the two fail.
export { Tensor } from "onnxruntime-web/webgpu";
