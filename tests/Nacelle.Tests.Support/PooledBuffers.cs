using System.Buffers;
using System.Reflection;
using Xunit;

namespace Nacelle.Tests.Support;

/// <summary>
/// What work left in the shared array pool's slots of the thread that ran it: the work runs on a thread of its own (whose
/// slots start empty), which then reads its slots. The pool keeps one returned array per size on the returning thread
/// before its per-core stacks; those slots are the runtime's private [ThreadStatic] field t_tlsBuckets of the pool's
/// type, read by reflection (the test skips, saying so, on a runtime where it or its slots' Array field is not found).
/// </summary>
public static class PooledBuffers
{
    private static readonly FieldInfo? Slots = ArrayPool<byte>.Shared.GetType().GetField("t_tlsBuckets", BindingFlags.NonPublic | BindingFlags.Static);

    /// <summary>The array a slot holds (a field of the slot's struct); without it every slot would read as empty.</summary>
    private static readonly FieldInfo? SlotArray = Slots?.FieldType.GetElementType()?.GetField("Array");

    /// <summary>The bytes of the arrays the pool keeps for the work's thread once the work is done.</summary>
    public static long KeptAfter(Action work)
    {
        Assert.SkipUnless(Slots is not null && SlotArray is not null,
            $"{ArrayPool<byte>.Shared.GetType()} has no t_tlsBuckets field with an Array in each slot on this runtime");
        long kept = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                work();
                if (Slots!.GetValue(null) is Array slots)
                {
                    foreach (var slot in slots)
                    {
                        if (slot is not null && SlotArray!.GetValue(slot) is byte[] array)
                        {
                            kept += array.Length;
                        }
                    }
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? kept : throw new InvalidOperationException("the work failed", failure);
    }
}
