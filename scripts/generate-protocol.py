#!/usr/bin/env python3
"""Generates SamsaProtocol's message codecs from Kafka's JSON message schemas.

The schemas are Apache Kafka's own (`clients/src/main/resources/common/message/`), as shipped inside the
kafka-python package (`kafka/protocol/schemas/resources/`); the error codes come from `kafka.errors`.
Run it with the test virtualenv's Python (scripts/setup.sh `require_python_packages` makes it):

    .build-python/bin/python scripts/generate-protocol.py Sources/SamsaProtocol/Generated \
        Tests/SamsaProtocolTests/Generated/Samples.swift

The output is committed; `ProtocolGeneratorTests` regenerates into a temporary directory and diffs.
Each message becomes a struct with one stored property per field (Kafka's defaults), a decoder
`init(from:version:)` and an encoder `write(into:version:)` that honour the fields' `versions`,
`nullableVersions`, `flexibleVersions` and tagged fields. A struct holding a `records` field (directly or
below) also gets `write(into:version:records:)`, which hands each records field to a `KafkaRecordsWriter`:
the broker's zero-copy fetch writes only the length prefix there and sends the bytes from the file.
"""
import json
import os
import re
import sys

# The APIs the broker and client use; requests and responses of each are generated.
APIS = [
    "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch", "FindCoordinator",
    "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup", "DescribeGroups", "ListGroups", "ApiVersions",
    "CreateTopics", "DeleteTopics", "InitProducerId", "OffsetForLeaderEpoch", "DescribeConfigs",
    # The admin API (issue 19).
    "CreatePartitions", "AlterConfigs", "IncrementalAlterConfigs", "DeleteRecords", "DeleteGroups", "OffsetDelete",
    "ElectLeaders", "DescribeLogDirs", "DescribeProducers", "AlterPartitionReassignments", "ListPartitionReassignments",
    "DescribeCluster",
]
# Other schemas: headers, and the consumer protocol's embedded subscription and assignment.
EXTRA = ["RequestHeader", "ResponseHeader", "ConsumerProtocolSubscription", "ConsumerProtocolAssignment"]

# Versions Kafka 4.0 removed from these schemas, restored: their fields still carry their original
# version ranges (e.g. DescribeConfigs' IsDefault "0", OffsetCommit's CommitTimestamp "1"), so the old
# layouts are exact. Advertising them is what librdkafka up to 2.11 (kcat on Debian) needs to enable
# features it checks by single versions (lz4: Produce 0; MsgVer1: Produce 2 and Fetch 2; the balanced
# consumer: OffsetCommit 1), and what older clients ask for.
VERSION_FLOORS = {
    "Produce": 0, "Fetch": 0, "OffsetCommit": 1, "CreateTopics": 0, "DeleteTopics": 0, "DescribeConfigs": 0,
    "OffsetForLeaderEpoch": 0,
}

PRIMITIVES = {
    "bool": "Bool", "int8": "Int8", "int16": "Int16", "uint16": "UInt16", "int32": "Int32", "uint32": "UInt32",
    "int64": "Int64", "float64": "Double", "string": "String", "bytes": "ByteBuffer", "records": "ByteBuffer",
    "uuid": "KafkaUUID",
}
SWIFT_KEYWORDS = {"protocol", "default", "internal", "operator", "repeat", "return", "static", "struct", "throws",
                  "true", "false", "type", "var", "let", "func", "in", "is", "as", "case", "where", "self", "init"}
INFINITY = 1 << 15


def schema_directory():
    import kafka.protocol.schemas as schemas
    return os.path.join(os.path.dirname(schemas.__file__), "resources")


def load(path):
    text = open(path).read()
    # The schemas carry // comments, which JSON does not allow.
    text = "\n".join(re.sub(r"^\s*//.*$", "", line) for line in text.splitlines())
    return json.loads(text)


def versions(text):
    """'3+' -> (3, INFINITY), '2-5' -> (2, 5), '4' -> (4, 4), 'none' or absent -> None."""
    if text is None or text == "none":
        return None
    if text.endswith("+"):
        return (int(text[:-1]), INFINITY)
    if "-" in text:
        low, high = text.split("-")
        return (int(low), int(high))
    return (int(text), int(text))


def condition(range_, valid):
    """A Swift condition on `version` for a version range, simplified against the message's valid range."""
    if range_ is None:
        return "false"
    low, high = range_
    checks = []
    if low > valid[0]:
        checks.append(f"version >= {low}")
    if high < valid[1]:
        checks.append(f"version <= {high}")
    return " && ".join(checks) if checks else "true"


def camel(name):
    lowered = name[0].lower() + name[1:]
    # Leading acronyms (e.g. "ISRs") stay readable as lower case.
    match = re.match(r"^([A-Z]+)([A-Z][a-z].*)$", name)
    if match:
        lowered = match.group(1).lower() + match.group(2)
    elif name.isupper():
        lowered = name.lower()
    return f"`{lowered}`" if lowered in SWIFT_KEYWORDS else lowered


def bare(name):
    return name.strip("`")


class Field:
    def __init__(self, spec, valid, flexible):
        self.name = spec["name"]
        self.swift_name = camel(spec["name"])
        self.type = spec["type"]
        self.versions = versions(spec.get("versions"))
        self.nullable = versions(spec.get("nullableVersions"))
        self.tagged = versions(spec.get("taggedVersions"))
        self.tag = spec.get("tag")
        self.flexible_override = spec.get("flexibleVersions")
        self.default = spec.get("default")
        self.about = spec.get("about", "")
        self.valid = valid
        self.message_flexible = flexible
        self.is_array = self.type.startswith("[]")
        self.element = self.type[2:] if self.is_array else self.type
        self.is_struct = self.element not in PRIMITIVES
        # A field nullable in any version is optional in Swift; non-nullable versions write nil as empty.
        self.optional = self.nullable is not None or self.type == "records"
        if self.optional and self.nullable is None:
            self.nullable = (0, INFINITY)

    def element_swift(self):
        return self.element if self.is_struct else PRIMITIVES[self.element]

    def swift_type(self):
        base = f"[{self.element_swift()}]" if self.is_array else self.element_swift()
        return base + ("?" if self.optional else "")

    def default_value(self):
        if self.optional and (self.default == "null" or self.default is None and self.type in ("records",)):
            return "nil"
        if self.optional and self.default is None and self.is_array:
            return "[]"
        if self.is_array:
            return "[]"
        if self.is_struct:
            return f"{self.element}()"
        t = self.element
        if t == "bool":
            return "true" if self.default in ("true", True) else "false"
        if t in ("string",):
            return json.dumps(self.default if self.default not in (None, "null") else "")
        if t in ("bytes", "records"):
            return "ByteBuffer()"
        if t == "uuid":
            return ".zero"
        if t == "float64":
            return str(float(self.default)) if self.default is not None else "0"
        if self.default is None:
            return "0"
        value = int(str(self.default), 0)
        return str(value)

    def compact(self):
        """The Swift expression telling whether this field uses compact encodings."""
        return "false" if self.flexible_override == "none" or self.message_flexible is None else "flexible"


def regular_versions(field):
    """The versions in which a field is a regular (untagged) field: its versions before its tagged ones."""
    if field.tagged is None:
        return field.versions
    low, high = field.versions
    if field.tagged[1] != INFINITY or field.tagged[0] > high:
        sys.exit(f"{field.name}: tagged versions {field.tagged} are not a suffix of {field.versions}")
    high = min(high, field.tagged[0] - 1)
    return (low, high) if low <= high else None


def collect_structs(fields, valid, structs, common):
    """Every struct type defined inline (a field with `fields`) anywhere below `fields`."""
    for spec in fields:
        if "fields" in spec:
            name = spec["type"][2:] if spec["type"].startswith("[]") else spec["type"]
            if name not in structs:
                structs[name] = spec["fields"]
            collect_structs(spec["fields"], valid, structs, common)


def read_element(field, compact, optional):
    t = field.element
    nullable = "Nullable" if optional else ""
    if field.is_struct:
        return f"try {field.element}(from: &buffer, version: version)"
    if t in ("string",):
        return f"try buffer.readKafka{nullable}String(compact: {compact})"
    if t in ("bytes", "records"):
        return f"try buffer.readKafka{nullable}Bytes(compact: {compact})"
    if t == "uuid":
        return "try buffer.readKafkaUUID()"
    if t == "bool":
        return "try buffer.readKafkaBool()"
    if t == "float64":
        return "try buffer.readKafkaFloat64()"
    return f"try buffer.readKafkaInteger(as: {PRIMITIVES[t]}.self)"


def write_element(field, value, compact, optional, spliced=frozenset()):
    t = field.element
    nullable = "Nullable" if optional else ""
    if field.is_struct and field.element in spliced:
        return f"{value}.write(into: &buffer, version: version, records: &records)"
    if field.is_struct:
        return f"{value}.write(into: &buffer, version: version)"
    if t == "records" and spliced:
        return f"records.write({value}, compact: {compact}, into: &buffer)"
    if t == "string":
        return f"buffer.writeKafka{nullable}String({value}, compact: {compact})"
    if t in ("bytes", "records"):
        return f"buffer.writeKafka{nullable}Bytes({value}, compact: {compact})"
    if t == "uuid":
        return f"buffer.writeKafkaUUID({value})"
    if t == "bool":
        return f"buffer.writeKafkaBool({value})"
    if t == "float64":
        return f"buffer.writeKafkaFloat64({value})"
    return f"buffer.writeInteger({value})"


def nullable_condition(field):
    return condition(field.nullable, field.valid) if field.nullable else "false"


def decode_lines(field, indent, target):
    """Lines that decode one field into `target` (regular or tagged section)."""
    pad = " " * indent
    compact = field.compact()
    lines = []
    nullable_now = nullable_condition(field)
    if field.is_array:
        lines.append(f"{pad}if let count = try buffer.readKafkaArrayCount(compact: {compact}) {{")
        lines.append(f"{pad}    var items: [{field.element_swift()}] = []")
        lines.append(f"{pad}    items.reserveCapacity(Swift.min(count, 1024))")
        lines.append(f"{pad}    for _ in 0..<count {{ items.append({read_element(field, compact, False)}) }}")
        lines.append(f"{pad}    {target} = items")
        lines.append(f"{pad}}} else {{")
        if field.optional:
            lines.append(f"{pad}    guard {nullable_now} else {{ throw ProtocolError(\"{field.name} is null in a version where it cannot be\") }}")
            lines.append(f"{pad}    {target} = nil")
        else:
            lines.append(f"{pad}    throw ProtocolError(\"{field.name} is null in a version where it cannot be\")")
        lines.append(f"{pad}}}")
    elif field.optional:
        lines.append(f"{pad}{target} = {read_element(field, compact, True)}")
        if nullable_now != "true":
            lines.append(f"{pad}if {target} == nil && !({nullable_now}) {{ throw ProtocolError(\"{field.name} is null in a version where it cannot be\") }}")
    else:
        lines.append(f"{pad}{target} = {read_element(field, compact, False)}")
    return lines


def encode_lines(field, indent, value, spliced=frozenset()):
    pad = " " * indent
    compact = field.compact()
    lines = []
    if field.is_array:
        if field.optional:
            lines.append(f"{pad}buffer.writeKafkaArrayCount({value}?.count, compact: {compact})")
            lines.append(f"{pad}for item in {value} ?? [] {{ {write_element(field, 'item', compact, False, spliced)} }}")
        else:
            lines.append(f"{pad}buffer.writeKafkaArrayCount({value}.count, compact: {compact})")
            lines.append(f"{pad}for item in {value} {{ {write_element(field, 'item', compact, False, spliced)} }}")
    elif field.optional:
        lines.append(f"{pad}{write_element(field, value, compact, True, spliced)}")
    else:
        lines.append(f"{pad}{write_element(field, value, compact, False, spliced)}")
    return lines


def spliced_structs(name, message_fields, structs):
    """The structs (and the message, as `name`) holding a `records` field, directly or below: their
    encoders take a records writer, so a caller can send the record bytes apart (zero-copy fetch)."""
    found = set()
    def holds(fields):
        for spec in fields:
            if spec.get("taggedVersions") is not None:
                continue
            element = spec["type"][2:] if spec["type"].startswith("[]") else spec["type"]
            if element == "records" or element in structs and holds(structs[element]):
                return True
        return False
    for struct_name, fields in structs.items():
        if holds(fields):
            found.add(struct_name)
    if holds(message_fields):
        found.add(name)
    return frozenset(found)


def struct_body(name, field_specs, valid, flexible, indent, top_level, message, spliced=frozenset()):
    pad = " " * indent
    fields = [Field(spec, valid, flexible) for spec in field_specs]
    out = []
    if top_level:
        conformance = ["KafkaMessage"] if message.get("apiKey") is not None else ["KafkaSchema"]
        if name in spliced and message.get("apiKey") is not None:
            conformance = ["KafkaRecordsMessage"]
        out.append(f"{pad}public struct {name}: {', '.join(conformance)} {{")
        if message.get("apiKey") is not None:
            out.append(f"{pad}    public static let apiKey: Int16 = {message['apiKey']}")
        out.append(f"{pad}    public static let validVersions: ClosedRange<Int16> = {valid[0]}...{valid[1]}")
        first_flexible = "nil" if flexible is None else str(flexible[0])
        out.append(f"{pad}    public static let firstFlexibleVersion: Int16? = {first_flexible}")
    else:
        out.append(f"{pad}public struct {name}: Sendable, Hashable {{")
    for field in fields:
        about = field.about.replace("\n", " ")
        if about:
            out.append(f"{pad}    /// {about}")
        out.append(f"{pad}    public var {field.swift_name}: {field.swift_type()} = {field.default_value()}")
    out.append("")
    out.append(f"{pad}    public init() {{}}")
    out.append("")
    flex_cond = condition(flexible, valid) if flexible else "false"
    regular = [f for f in fields if f.versions is not None]
    tagged = sorted([f for f in fields if f.tagged is not None and f.tag is not None], key=lambda f: f.tag)
    uses_flexible = flexible is not None

    # Decoder.
    out.append(f"{pad}    public init(from buffer: inout ByteBuffer, version: Int16) throws(ProtocolError) {{")
    if uses_flexible:
        out.append(f"{pad}        let flexible = {flex_cond}")
    for field in regular:
        present = condition(regular_versions(field), valid)
        if present == "false":
            continue
        body = decode_lines(field, indent + 12, f"self.{bare(field.swift_name)}")
        if present == "true":
            out += [line[4:] for line in body]
        else:
            out.append(f"{pad}        if {present} {{")
            out += body
            out.append(f"{pad}        }}")
    if uses_flexible:
        out.append(f"{pad}        if flexible {{")
        out.append(f"{pad}            for _ in 0..<(try buffer.readKafkaTaggedFieldCount()) {{")
        if tagged:
            out.append(f"{pad}                var (tag, field) = try buffer.readKafkaTaggedField()")
            out.append(f"{pad}                switch tag {{")
            for field in tagged:
                tagged_cond = condition(field.tagged, valid)
                where = "" if tagged_cond == "true" else f" where {tagged_cond}"
                out.append(f"{pad}                case {field.tag}{where}:")
                inner = decode_lines(field, indent + 20, f"self.{bare(field.swift_name)}")
                out += [line.replace("buffer.", "field.").replace("&buffer", "&field") for line in inner]
                out.append(f"{pad}                    if field.readableBytes != 0 {{ throw ProtocolError(\"tagged field {field.name} has trailing bytes\") }}")
            out.append(f"{pad}                default: _ = field")
            out.append(f"{pad}                }}")
        else:
            out.append(f"{pad}                _ = try buffer.readKafkaTaggedField()")
        out.append(f"{pad}            }}")
        out.append(f"{pad}        }}")
    out.append(f"{pad}    }}")
    out.append("")

    # Encoder. A struct holding records encodes through a records writer; the plain `write` uses the
    # inline one (length and bytes in the buffer).
    splices = name in spliced
    if splices:
        out.append(f"{pad}    public func write(into buffer: inout ByteBuffer, version: Int16) {{")
        out.append(f"{pad}        var records = InlineRecordsWriter()")
        out.append(f"{pad}        write(into: &buffer, version: version, records: &records)")
        out.append(f"{pad}    }}")
        out.append("")
        out.append(f"{pad}    /// Encodes like `write(into:version:)`, handing each `records` field to `records`, in encoding order.")
        out.append(f"{pad}    public func write<Records: KafkaRecordsWriter>(into buffer: inout ByteBuffer, version: Int16, records: inout Records) {{")
    else:
        out.append(f"{pad}    public func write(into buffer: inout ByteBuffer, version: Int16) {{")
    if uses_flexible:
        out.append(f"{pad}        let flexible = {flex_cond}")
    for field in regular:
        present = condition(regular_versions(field), valid)
        if present == "false":
            continue
        body = encode_lines(field, indent + 12, f"self.{bare(field.swift_name)}", spliced if splices else frozenset())
        if present == "true":
            out += [line[4:] for line in body]
        else:
            out.append(f"{pad}        if {present} {{")
            out += body
            out.append(f"{pad}        }}")
    if uses_flexible:
        out.append(f"{pad}        if flexible {{")
        if tagged:
            out.append(f"{pad}            var tagged = KafkaTaggedFieldsWriter()")
            for field in tagged:
                tagged_cond = condition(field.tagged, valid)
                present = f"{tagged_cond} && " if tagged_cond != "true" else ""
                value = f"self.{bare(field.swift_name)}"
                out.append(f"{pad}            if {present}{value} != {field.default_value()} {{")
                out.append(f"{pad}                tagged.add(tag: {field.tag}) {{ buffer in")
                out += encode_lines(field, indent + 20, value)
                out.append(f"{pad}                }}")
                out.append(f"{pad}            }}")
            out.append(f"{pad}            tagged.write(into: &buffer)")
        else:
            out.append(f"{pad}            buffer.writeKafkaUnsignedVarint(0)")
        out.append(f"{pad}        }}")
    out.append(f"{pad}    }}")
    out.append(f"{pad}}}")
    return out


def valid_versions(name, message):
    low, high = versions(message["validVersions"])
    api = re.sub(r"(Request|Response)$", "", name)
    return (min(low, VERSION_FLOORS.get(api, low)), high)


def generate(name, message):
    valid = valid_versions(name, message)
    flexible = versions(message.get("flexibleVersions"))
    structs = {}
    for common in message.get("commonStructs", []):
        structs[common["name"]] = common["fields"]
        collect_structs(common["fields"], valid, structs, None)
    collect_structs(message["fields"], valid, structs, None)
    out = [
        "// Generated by scripts/generate-protocol.py from Kafka's " + name + ".json; do not edit.",
        "public import NIOCore",
        "",
    ]
    spliced = spliced_structs(name, message["fields"], structs)
    out += struct_body(name, message["fields"], valid, flexible, 0, True, message, spliced)
    for struct_name, fields in structs.items():
        out.append("")
        out.append(f"extension {name} {{")
        out += struct_body(struct_name, fields, valid, flexible, 4, False, message, spliced)
        out.append("}")
    return "\n".join(out) + "\n"


def sample_value(field, message):
    """A value different from the field's default, for the round-trip tests."""
    if field.is_array:
        element = f"{message}.{field.element}.sample" if field.is_struct else sample_scalar(field.element, field.name)
        return f"[{element}]"
    if field.is_struct:
        return f"{message}.{field.element}.sample"
    return sample_scalar(field.element, field.name)


def sample_scalar(t, name):
    if t == "bool":
        return "true"
    if t == "string":
        return json.dumps(f"{name}-sample")
    if t in ("bytes", "records"):
        return "ByteBuffer(bytes: [1, 2, 3])"
    if t == "uuid":
        return "KafkaUUID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)"
    if t == "float64":
        return "0.5"
    return "7"


def generate_samples(name, message):
    """`sample` values for a message and its structs, every field set to a non-default value."""
    valid = valid_versions(name, message)
    flexible = versions(message.get("flexibleVersions"))
    structs = {}
    for common in message.get("commonStructs", []):
        structs[common["name"]] = common["fields"]
        collect_structs(common["fields"], valid, structs, None)
    collect_structs(message["fields"], valid, structs, None)
    out = []
    for type_name, fields in [(name, message["fields"])] + [(f"{name}.{n}", f) for n, f in structs.items()]:
        out.append(f"extension {type_name} {{")
        out.append("    static var sample: Self {")
        out.append("        var value = Self()")
        for spec in fields:
            field = Field(spec, valid, flexible)
            out.append(f"        value.{bare(field.swift_name)} = {sample_value(field, name)}")
        out.append("        return value")
        out.append("    }")
        out.append("}")
        out.append("")
    out.append(f"extension {name}: Sampled {{")
    out.append("    static var sampleValue: Any { sample }")
    out.append("}")
    out.append("")
    return out


def generate_api_keys(messages):
    out = ["// Generated by scripts/generate-protocol.py from Kafka's message schemas; do not edit.", "",
           "/// The API keys of the requests SamsaProtocol has codecs for, with Kafka's numbers.",
           "public enum ApiKey: Int16, Sendable, CaseIterable, CustomStringConvertible {"]
    for api in sorted(messages, key=lambda a: a[1]):
        out.append(f"    case {camel(api[0])} = {api[1]}")
    out.append("")
    out.append("    /// Kafka's name of the API.")
    out.append("    public var description: String {")
    out.append("        switch self {")
    for api in sorted(messages, key=lambda a: a[1]):
        out.append(f"        case .{bare(camel(api[0]))}: \"{api[0]}\"")
    out.append("        }")
    out.append("    }")
    for kind in ("request", "response"):
        out.append("")
        out.append(f"    /// The {kind} body type of the API.")
        out.append(f"    public var {kind}Type: any KafkaMessage.Type {{")
        out.append("        switch self {")
        for api in sorted(messages, key=lambda a: a[1]):
            out.append(f"        case .{bare(camel(api[0]))}: {api[0]}{kind.capitalize()}.self")
        out.append("        }")
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


# Where kafka-python's error name is not Kafka's own (`org.apache.kafka.common.protocol.Errors`): tools
# print the name, and operators search for Kafka's.
KAFKA_ERROR_NAMES = {6: "NOT_LEADER_OR_FOLLOWER", 39: "INVALID_REPLICA_ASSIGNMENT"}


def generate_error_codes():
    import kafka.errors as errors
    codes = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.BrokerResponseError) and value.errno is not None:
            codes[value.errno] = value.message
    codes.update(KAFKA_ERROR_NAMES)
    out = ["// Generated by scripts/generate-protocol.py from kafka-python's kafka.errors; do not edit.", "",
           "/// Kafka's error codes, with Kafka's numbers; `name` is Kafka's upper-case name.",
           "public enum ErrorCode: Int16, Sendable, CaseIterable, CustomStringConvertible {"]
    names = {}
    for number, message in sorted(codes.items()):
        swift = "".join(part.capitalize() for part in message.lower().split("_"))
        swift = camel(swift)
        if swift == "noError":
            swift = "none"
        names[number] = (swift, message)
        out.append(f"    case {swift} = {number}")
    out.append("")
    out.append("    /// Kafka's name, e.g. `UNSUPPORTED_VERSION`.")
    out.append("    public var name: String {")
    out.append("        switch self {")
    for number, (swift, message) in sorted(names.items()):
        out.append(f"        case .{bare(swift)}: \"{message}\"")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    public var description: String { \"\\(name) (\\(rawValue))\" }")
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: generate-protocol.py OUTPUT_DIRECTORY SAMPLES_FILE")
    output, samples_file = sys.argv[1], sys.argv[2]
    samples = ["// Generated by scripts/generate-protocol.py; do not edit.",
               "// A sample of every message with every field set to a value other than its default.",
               "import NIOCore", "import SamsaProtocol", ""]
    os.makedirs(output, exist_ok=True)
    source = schema_directory()
    keys = []
    names = [f"{api}{kind}" for api in APIS for kind in ("Request", "Response")] + EXTRA
    for name in names:
        message = load(os.path.join(source, f"{name}.json"))
        if message.get("type") == "request":
            keys.append((name[: -len("Request")], message["apiKey"]))
        with open(os.path.join(output, f"{name}.swift"), "w") as file:
            file.write(generate(name, message))
        samples += generate_samples(name, message)
    with open(os.path.join(output, "ApiKey.swift"), "w") as file:
        file.write(generate_api_keys(keys))
    with open(os.path.join(output, "ErrorCode.swift"), "w") as file:
        file.write(generate_error_codes())
    with open(samples_file, "w") as file:
        file.write("\n".join(samples).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
