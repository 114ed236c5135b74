namespace Pool.Contracts;

/// <summary>
/// The bytes of <see cref="FunctionDescriptor.Target"/>: the delegate's target object as a tree of nodes,
/// each a byte of this kind and then:
/// <list type="bullet">
/// <item><see cref="Null"/>: nothing.</item>
/// <item><see cref="Value"/>: the value's type (assembly-qualified name, or null for the slot's declared
/// type), an <c>int32</c> length and the <see cref="PoolSerializer"/>'s bytes.</item>
/// <item><see cref="Fields"/>: the object's type (null for the slot's declared type), an <c>int32</c> count,
/// then per field a byte (how many base types up from the object's type declares it), its name and its
/// node. The worker makes the object without running a constructor and sets the fields.</item>
/// </list>
/// The top node's slot is <see cref="FunctionDescriptor.TargetType"/>; a field's slot is its declared type.
/// Closures (the compiler's display classes) and objects whose method is shipped are <see cref="Fields"/>;
/// what they hold (captured variables, fields) is a <see cref="Value"/>, as an argument would be.
/// </summary>
internal enum TargetNode : byte
{
    Null = 0,
    Value = 1,
    Fields = 2,
}
