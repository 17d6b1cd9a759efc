// The ONNX IR as plain TypeScript types: one interface per protobuf message of onnx.proto (ModelProto,
// GraphProto, NodeProto, TensorProto, …), field names the ONNX ones camelCased (numbers in
// runtime/onnx/schema.ts). Repeated fields are arrays, optional fields are present only when the file
// had them, bytes are Uint8Array, int64 values `number` or, where they can exceed 2^53, `bigint`.
// runtime/onnx/model.ts decodes bytes into these and encodes them back. Browser-safe, types only.

export interface StringStringEntryProto {
  key?: string;
  value?: string;
}

export interface IntIntListEntryProto {
  key?: number;
  value: number[];
}

export interface OperatorSetIdProto {
  /** '' (or absent, or 'ai.onnx') is the default ONNX domain. */
  domain?: string;
  version?: number;
}

export interface TensorAnnotation {
  tensorName?: string;
  quantParameterTensorNames: StringStringEntryProto[];
}

export interface DeviceConfigurationProto {
  name?: string;
  numDevices?: number;
  device: string[];
}

export interface SimpleShardedDimProto {
  dimValue?: number;
  dimParam?: string;
  numShards?: number;
}

export interface ShardedDimProto {
  axis?: number;
  simpleSharding: SimpleShardedDimProto[];
}

export interface ShardingSpecProto {
  tensorName?: string;
  device: number[];
  indexToDeviceGroupMap: IntIntListEntryProto[];
  shardedDim: ShardedDimProto[];
}

export interface NodeDeviceConfigurationProto {
  configurationId?: string;
  shardingSpec: ShardingSpecProto[];
  pipelineStage?: number;
}

export interface TensorSegment {
  begin?: number;
  end?: number;
}

export interface TensorProto {
  dims: number[];
  /** A DataType value (1 FLOAT, 10 FLOAT16, 3 INT8, …). */
  dataType?: number;
  segment?: TensorSegment;
  floatData: number[];
  /** Also carries int8/uint8/int16/uint16/bool, and float16/bfloat16/float8 as raw bits. */
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: bigint[];
  name?: string;
  /** Fixed-width little-endian element bytes. */
  rawData?: Uint8Array;
  doubleData: number[];
  uint64Data: bigint[];
  docString?: string;
  externalData: StringStringEntryProto[];
  /** 0 DEFAULT, 1 EXTERNAL. */
  dataLocation?: number;
  metadataProps: StringStringEntryProto[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims: number[];
}

export interface TensorShapeDimension {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto {
  dim: TensorShapeDimension[];
}

export interface TypeProto {
  tensorType?: { elemType?: number; shape?: TensorShapeProto };
  sequenceType?: { elemType?: TypeProto };
  mapType?: { keyType?: number; valueType?: TypeProto };
  opaqueType?: { domain?: string; name?: string };
  sparseTensorType?: { elemType?: number; shape?: TensorShapeProto };
  optionalType?: { elemType?: TypeProto };
  denotation?: string;
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto {
  name?: string;
  /** An AttributeType value (1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 6 FLOATS, 7 INTS, …). */
  type?: number;
  f?: number;
  i?: bigint;
  /** UTF-8 bytes (attribute strings are `bytes` on the wire). */
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats: number[];
  ints: bigint[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  docString?: string;
  tp?: TypeProto;
  typeProtos: TypeProto[];
  refAttrName?: string;
  sparseTensor?: SparseTensorProto;
  sparseTensors: SparseTensorProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  attribute: AttributeProto[];
  docString?: string;
  domain?: string;
  overload?: string;
  metadataProps: StringStringEntryProto[];
  deviceConfigurations: NodeDeviceConfigurationProto[];
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: TensorAnnotation[];
  sparseInitializer: SparseTensorProto[];
  metadataProps: StringStringEntryProto[];
}

export interface FunctionProto {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  attributeProto: AttributeProto[];
  valueInfo: ValueInfoProto[];
  overload?: string;
  metadataProps: StringStringEntryProto[];
}

export interface TrainingInfoProto {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding: StringStringEntryProto[];
  updateBinding: StringStringEntryProto[];
}

/** A decoded ONNX ModelProto. `irVersion` and `graph` are always present (decodeModel checks). */
export interface OnnxModel {
  irVersion: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  opsetImport: OperatorSetIdProto[];
  metadataProps: StringStringEntryProto[];
  trainingInfo: TrainingInfoProto[];
  functions: FunctionProto[];
  configuration: DeviceConfigurationProto[];
}
