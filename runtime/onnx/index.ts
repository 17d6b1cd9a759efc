// The ONNX graph toolkit's public API: decode/encode ONNX models to plain objects (model.ts), the
// schema they follow (schema.ts), and helpers to read and edit graphs (graph.ts). Browser-safe.

export { MAX_IR_VERSION, onnxRoot, onnxType } from './schema.js';
export { decodeModel, encodeModel, cloneModel } from './model.js';
export type {
  OnnxModel,
  GraphProto,
  NodeProto,
  AttributeProto,
  TensorProto,
  TensorSegment,
  SparseTensorProto,
  ValueInfoProto,
  TypeProto,
  TensorShapeProto,
  TensorShapeDimension,
  OperatorSetIdProto,
  StringStringEntryProto,
  FunctionProto,
  TrainingInfoProto,
  TensorAnnotation,
  DeviceConfigurationProto,
  NodeDeviceConfigurationProto,
  ShardingSpecProto,
  ShardedDimProto,
  SimpleShardedDimProto,
  IntIntListEntryProto,
} from './model.js';
export * from './graph.js';
